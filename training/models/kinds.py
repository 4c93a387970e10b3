"""The model kinds' names: what ``kind`` in ``models/<name>/config.toml`` may say, known without torch.

training/models/registry.py maps each name to its module and settings, and imports torch (~2 s) to do so;
``ctr new --kind`` and ``ctr train`` refuse a name that is not one of these before that import, so a typo is
said at once (tests/training/models/test_kinds.py checks that the registry has a row for each, and no other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_KIND_NAMES = (
    "esmm",
    "esmm_debiased",
    "adversarial_ctr",
    "esam",
    "cvr_base",
    "cvr_oversampling",
    "cvr_aman",
    "division",
    "ips_cvr",
    "escm2",
)


def config_kind(config: dict[str, Any], path: Path) -> str:
    """The kind ``config`` (config.toml at ``path``, as read) names; ValueError naming ``path`` where it names
    none or one that is not a model kind."""
    if "kind" not in config:
        raise ValueError(f"{path} must say which kind of model it is (kind = ...)")
    kind = config["kind"]
    if kind not in MODEL_KIND_NAMES:
        raise ValueError(f"{path} says kind = {kind!r}, which is unknown: set it to one of {sorted(MODEL_KIND_NAMES)}")
    return kind
