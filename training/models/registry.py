"""Model kinds by name: what ``kind`` in ``models/<name>/config.toml`` may say, each with its module and settings.

The names alone are also in training/models/kinds.py, which imports no torch, for the commands that refuse an
unknown kind before this module's import (tests/training/models/test_kinds.py checks that the two agree)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from common.config_table import built
from common.features import FeatureSpec
from training.models.adversarial_ctr import AdversarialCTR, AdversarialCTRConfig
from training.models.aman import AMAN, AMANConfig
from training.models.base_cvr import BaseCVR, BaseCVRConfig
from training.models.division import Division, DivisionConfig
from training.models.esam import ESAM, ESAMConfig
from training.models.escm2 import ESCM2, ESCM2Config
from training.models.esmm import ESMM, ESMMConfig
from training.models.esmm_debiased import DebiasedESMM, DebiasedESMMConfig
from training.models.ips_cvr import IPSCVR, IPSCVRConfig
from training.models.oversampling import Oversampling, OversamplingConfig

MODEL_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    "esmm": (ESMM, ESMMConfig),
    "esmm_debiased": (DebiasedESMM, DebiasedESMMConfig),  # ESMM with the position bypass (+ adversary)
    "adversarial_ctr": (AdversarialCTR, AdversarialCTRConfig),
    "esam": (ESAM, ESAMConfig),
    # entire-space CVR: ESMM's baselines and its IPS / doubly-robust successors (docs/cvr.md)
    "cvr_base": (BaseCVR, BaseCVRConfig),
    "cvr_oversampling": (Oversampling, OversamplingConfig),
    "cvr_aman": (AMAN, AMANConfig),
    "division": (Division, DivisionConfig),
    "ips_cvr": (IPSCVR, IPSCVRConfig),
    "escm2": (ESCM2, ESCM2Config),
}


def build_model(kind: str, spec: FeatureSpec, params: dict[str, Any], seed: int | None = None) -> nn.Module:
    """A fresh model of ``kind`` over ``spec``, configured by ``params`` (the config's [model] table).

    With ``seed`` its initial weights are drawn from ``torch.manual_seed(seed)``, so that two builds of
    one config train to the same model; without it, from whatever state torch's global generator is in.
    """
    model_config = model_config_of(kind, params)
    if seed is not None:
        torch.manual_seed(seed)
    model = MODEL_KINDS[kind][0](spec, model_config)
    refuse_past_onnx_limit(kind, spec, model)
    return model


ONNX_FILE_LIMIT = 2**31  # protobuf's limit on one message: an ONNX file that holds its own weights
GRAPH_ROOM = 2**26  # beside the weights: the graph's nodes and names, with room to spare


def refuse_past_onnx_limit(kind: str, spec: FeatureSpec, model: nn.Module) -> None:
    """ValueError when ``model`` (a ``kind`` model of ``spec``) holds more weights than an ONNX file can, before
    any step: past 2 GiB the export failed after the whole training ("Unable to parse proto ... exceeds the
    size limit", at 5 features of 1,048,573 buckets x 103 dimensions), and torch's exporter, moving the
    weights to files of their own, wrote a version whose weights nothing checksummed. (Counted on torch's
    meta device instead, nothing would be allocated, but its first use cost each process a second.)"""
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if weights + GRAPH_ROOM > ONNX_FILE_LIMIT:
        raise ValueError(
            f"a {kind} model of this spec and [model] holds {weights / 2**30:.2f} GiB of weights, past the "
            f"{ONNX_FILE_LIMIT / 2**30:g} GiB an ONNX file can hold: the categorical features' "
            f"{spec.total_buckets:,} buckets in all, times the embedding width, make most of it; lower their "
            "buckets or the embedding dimension"
        )


def trains_on(kind: str) -> str:
    """What ``kind`` learns from: "queries" (a retrieval model: the displayed and the non-displayed
    candidates of each request, ``--non-displayed`` beside ``--logs``), else "impressions" (displayed ads)."""
    model_class = MODEL_KINDS[kind][0] if kind in MODEL_KINDS else None
    return getattr(model_class, "trains_on", "impressions")


def default_evaluation(kind: str) -> str:
    """The ``ctr evaluate`` report of a ``kind`` model whose config names none (a key of
    training.model_config.EVALUATIONS): the kind's own (esam: "retrieval"), else "world"."""
    return getattr(MODEL_KINDS[kind][0], "evaluation", "world")


def model_config_of(kind: str, params: dict[str, Any]) -> Any:
    """The kind's config dataclass built from ``params`` (a [model] table); ValueError naming the setting
    that is not one of the kind's, not of its type or out of its range. ``ModelConfig.load`` calls it
    too, so a mistake is said before any log is read."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    return built(MODEL_KINDS[kind][1], params, "[model]", owner=kind)
