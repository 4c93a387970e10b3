"""Files written whole or not at all (common/whole_file.py), for reports, specs, checkpoints, statistics
and simulated logs: a full disk left a truncated file where a reader took it for whole, or a temporary
file taking the disk's last space."""

from __future__ import annotations

import errno

import pytest
import torch

from common.whole_file import written_whole
from tests.support.esmm_checkpoint import checkpoint


def test_a_failed_write_leaves_what_was_there_and_no_temporary_file(tmp_path) -> None:
    path = tmp_path / "deep" / "statistics.json"
    with written_whole(path) as temporary:
        temporary.write_text("old")
    with pytest.raises(OSError) as raised, written_whole(path) as temporary:
        temporary.write_text("ne")  # part of it, as a full disk takes
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["statistics.json"]
    assert f"(while writing {path})" in raised.value.__notes__


def test_a_checkpoint_the_disk_cannot_hold_leaves_the_one_before(tmp_path, monkeypatch) -> None:
    """torch's writer said "unexpected pos 122048 vs 121968" and left checkpoint.tmp on the full disk."""
    path = tmp_path / "esmm" / "checkpoint.pt"
    checkpoint().save(path)
    before = path.read_bytes()
    saved = torch.save

    def disk_full(payload: object, target: object) -> None:
        saved(payload, target)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 122048 vs 121968")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(RuntimeError) as raised:
        checkpoint().save(path)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]
    assert f"(while writing {path})" in raised.value.__notes__
