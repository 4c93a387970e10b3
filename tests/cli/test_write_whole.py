"""Reports and specs written whole or not at all (cli/reports.py ``write_whole``): on a full disk an empty
file was left at ``--out``, and a report there before was lost."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cli.reports import write_report, write_whole


def test_a_write_that_fails_leaves_the_file_there_before_and_nothing_else(tmp_path, monkeypatch) -> None:
    out = tmp_path / "report.json"
    write_report(out, {"auc": 0.7})
    before = out.read_text()
    written = Path.write_text

    def disk_full(self: Path, text: str, *args: object, **kwargs: object) -> int:
        written(self, text[:5])  # part of it, as a full disk takes
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_report(out, {"auc": 0.8})
    assert out.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_folders_are_made_and_the_text_is_all_there(tmp_path) -> None:
    out = tmp_path / "a" / "b" / "spec.toml"
    write_whole(out, "x = 1\n")
    write_whole(out, "x = 2\n")
    assert out.read_text() == "x = 2\n" and [p.name for p in out.parent.iterdir()] == ["spec.toml"]
