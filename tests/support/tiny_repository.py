"""A model repository holding the tiny ESMM with chosen serving settings, for tests of a running server."""

from __future__ import annotations

from pathlib import Path

from common.features import FeatureSpec
from tests.support.tiny_model import SPEC, publish_tiny_esmm


def repository(root: Path, serving: str = "", versions: int = 1, spec: FeatureSpec = SPEC) -> Path:
    """``root`` with the tiny ESMM (of ``spec``) as model ``esmm`` versions 1 to ``versions``, all served (each
    with a batcher of its own), its ``[serving]`` table ``serving`` (TOML lines)."""
    for _ in range(versions):
        publish_tiny_esmm(root, spec=spec)
    policy = f"version_policy = {{ latest = {versions} }}\n" if versions > 1 else ""  # one: the default
    (root / "esmm" / "config.toml").write_text(f'kind = "esmm"\n[serving]\n{serving}\n{policy}')
    return root
