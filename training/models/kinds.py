"""The model kinds: what ``kind`` in ``models/<name>/config.toml`` may say, each with its settings, known without torch.

Each kind's row says what its config.toml holds and means: the ``[model]`` settings' dataclass
(training/models/settings/), what the kind learns from, and the ``ctr evaluate`` report its config names by
default. None of it imports torch, so ``ctr new`` writes a kind's defaults, and ``ctr train`` / ``ctr evaluate``
check a whole config, before that import (~2 s of CPU). training/models/registry.py maps each name to its
network, built from these settings (tests/training/models/test_kinds.py checks that it has a row for each, and no
other).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config_table import built
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.models.settings.aman import AMANConfig
from training.models.settings.base_cvr import BaseCVRConfig
from training.models.settings.division import DivisionConfig
from training.models.settings.esam import ESAMConfig
from training.models.settings.escm2 import ESCM2Config
from training.models.settings.esmm import ESMMConfig
from training.models.settings.esmm_debiased import DebiasedESMMConfig
from training.models.settings.ips_cvr import IPSCVRConfig
from training.models.settings.oversampling import OversamplingConfig


@dataclass(frozen=True)
class ModelKind:
    """What a kind's config.toml holds and means, known before its network is built."""

    settings: type  # the [model] table's dataclass
    # "impressions" (displayed ads), or "queries": a retrieval model, trained on the displayed and the
    # non-displayed candidates of each request (training/retrieval_data.py; `--non-displayed` beside `--logs`)
    trains_on: str = "impressions"
    evaluation: str = "world"  # `ctr evaluate`'s report unless config.toml names one (training/model_config.py)


MODEL_KINDS: dict[str, ModelKind] = {
    "esmm": ModelKind(ESMMConfig),
    "esmm_debiased": ModelKind(DebiasedESMMConfig),  # ESMM with the position bypass (+ adversary)
    "adversarial_ctr": ModelKind(AdversarialCTRConfig),
    "esam": ModelKind(ESAMConfig, trains_on="queries", evaluation="retrieval"),
    # entire-space CVR: ESMM's baselines and its IPS / doubly-robust successors (docs/cvr.md)
    "cvr_base": ModelKind(BaseCVRConfig),
    "cvr_oversampling": ModelKind(OversamplingConfig),
    "cvr_aman": ModelKind(AMANConfig),
    "division": ModelKind(DivisionConfig),
    "ips_cvr": ModelKind(IPSCVRConfig),
    "escm2": ModelKind(ESCM2Config),
}


def known_kind(kind: str, hint: str = "this code knows") -> str:
    """``kind`` where it is one of MODEL_KINDS; else ValueError "unknown model kind 'KIND': HINT [the kinds]", the
    one refusal of every place a kind is named: ``hint`` says what to do there ("pass --kind with one of")."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: {hint} {sorted(MODEL_KINDS)}")
    return kind


def config_kind(config: dict[str, Any], path: Path) -> str:
    """The kind ``config`` (config.toml at ``path``, as read) names; ValueError naming ``path`` where it names
    none or one that is not a model kind."""
    if "kind" not in config:
        raise ValueError(f"{path} must say which kind of model it is (kind = ...)")
    return known_kind(config["kind"], f"set kind in {path} to one of")


def model_config_of(kind: str, params: dict[str, Any]) -> Any:
    """The kind's config dataclass built from ``params`` (a [model] table); ValueError naming the setting
    that is not one of the kind's, not of its type or out of its range. ``ModelConfig.load`` calls it
    too, so a mistake is said before any log is read."""
    return built(MODEL_KINDS[known_kind(kind)].settings, params, "[model]", owner=kind)


def trains_on(kind: str) -> str:
    """What ``kind`` learns from: "queries" (a retrieval model: the displayed and the non-displayed
    candidates of each request, ``--non-displayed`` beside ``--logs``), else "impressions" (displayed ads)."""
    return MODEL_KINDS[kind].trains_on if kind in MODEL_KINDS else "impressions"


def default_evaluation(kind: str) -> str:
    """The ``ctr evaluate`` report of a ``kind`` model whose config names none (a key of
    training.model_config.EVALUATIONS): the kind's own (esam: "retrieval"), else "world"."""
    return MODEL_KINDS[kind].evaluation
