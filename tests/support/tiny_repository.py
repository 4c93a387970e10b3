"""A model repository holding the tiny ESMM with chosen serving settings, for tests of a running server."""

from __future__ import annotations

from pathlib import Path

from common.features import FeatureSpec
from tests.support.tiny_model import SPEC, publish_tiny_esmm


def repository(root: Path, serving: str = "", spec: FeatureSpec = SPEC) -> Path:
    """``root`` with the tiny ESMM (of ``spec``) as model ``esmm`` version 1, its ``[serving]`` table ``serving``
    (TOML lines)."""
    publish_tiny_esmm(root, spec=spec)
    (root / "esmm" / "config.toml").write_text(f'kind = "esmm"\n[serving]\n{serving}\n')
    return root
