"""A model repository holding the tiny ESMM with chosen serving settings, for tests of a running server."""

from __future__ import annotations

from pathlib import Path

from tests.support.tiny_model import publish_tiny_esmm


def repository(root: Path, serving: str = "") -> Path:
    """``root`` with the tiny ESMM as model ``esmm`` version 1, its ``[serving]`` table ``serving`` (TOML lines)."""
    publish_tiny_esmm(root)
    (root / "esmm" / "config.toml").write_text(f'kind = "esmm"\n[serving]\n{serving}\n')
    return root
