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


def test_content_is_compared_for_the_files_whose_entry_changed_alone(tmp_path: Path) -> None:
    """A chmod of model.json hashed every file the manifest lists (a retrieval model's catalog of gigabytes):
    only the changed entries are read; model.json is compared as parsed, a graph by its sha256."""
    from common.repository import MODEL_FILE, read_manifest, version_dir
    from service.models.refusal import changed_names, content_differs
    from tests.support.tiny_model import publish_tiny_esmm

    publish_tiny_esmm(tmp_path)
    directory, manifest = version_dir(tmp_path, "esmm", 1), read_manifest(tmp_path, "esmm", 1)
    before = version_files(directory)
    (directory / "model.json").chmod(0o600)
    assert changed_names(before, version_files(directory)) == {"model.json"}
    assert not content_differs(tmp_path, manifest, {"model.json"})
    (directory / MODEL_FILE).write_bytes(b"other weights")
    assert not content_differs(tmp_path, manifest, {"model.json"})  # model.onnx's entry taken as unchanged
    assert content_differs(tmp_path, manifest, changed_names(before, version_files(directory)))
    assert content_differs(tmp_path, manifest, {"model.json", MODEL_FILE})
