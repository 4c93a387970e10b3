"""A refused version is loaded again by polling once its files change, however they were changed."""

from __future__ import annotations

import os
from pathlib import Path

from service.models.refusal import Refusal, version_files


def test_a_file_rewritten_to_the_same_size_and_modification_time_is_a_change(tmp_path: Path) -> None:
    """cp -p and tar restore a file's modification time; its inode or change time still moves."""
    (tmp_path / "model.onnx").write_bytes(b"half")
    stat = (tmp_path / "model.onnx").stat()
    refusal = Refusal("model.onnx cannot be read", version_files(tmp_path))
    assert not refusal.files_changed(tmp_path)
    (tmp_path / "replacement").write_bytes(b"full")  # same size, then moved in with the old times
    os.utime(tmp_path / "replacement", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "replacement", tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").stat().st_mtime_ns == stat.st_mtime_ns
    assert refusal.files_changed(tmp_path)
