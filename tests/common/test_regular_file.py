"""A model repository's file is opened without waiting on one that is no plain file (common/regular_file.py)."""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

import pytest

from common.regular_file import NOT_REGULAR, NotRegularFile, read_regular_text, regular_file
from tests.support.fifo import fifo_at


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    """``open`` waited for a writer: the service's poll thread, with the models' lock held, for good."""
    with fifo_at(tmp_path / "model.onnx") as fifo:
        started = time.monotonic()
        with pytest.raises(NotRegularFile) as refused:
            read_regular_text(fifo)
        assert time.monotonic() - started < 1.0
    assert str(refused.value) == f"{fifo} {NOT_REGULAR}"
    assert refused.value.filename == str(fifo)
    assert NOT_REGULAR == "is not a regular file (a FIFO, device or socket): a model repository's files are plain files"


def test_a_socket_and_a_device_are_refused_as_a_fifo_is(tmp_path: Path) -> None:
    listening = socket.socket(socket.AF_UNIX)
    try:
        listening.bind(str(tmp_path / "model.json"))  # open() of it fails with ENXIO
        with pytest.raises(NotRegularFile, match=r"model\.json is not a regular file"):
            read_regular_text(tmp_path / "model.json")
    finally:
        listening.close()
    with pytest.raises(NotRegularFile, match=r"/dev/null is not a regular file"), regular_file(Path("/dev/null")):
        pass


def test_a_folder_is_said_as_open_says_it(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as refused, regular_file(tmp_path):
        pass
    assert refused.value.filename == str(tmp_path)


def test_a_plain_file_reads_and_a_failed_read_names_it(tmp_path: Path) -> None:
    """A read's EIO names no file: it is said of the path, for the line that names where storage failed."""
    path = tmp_path / "model.json"
    path.write_text("{}", encoding="utf-8")
    assert read_regular_text(path) == "{}"
    with pytest.raises(OSError) as failed, regular_file(path):
        raise OSError(errno.EIO, "Input/output error")
    assert (failed.value.errno, failed.value.filename) == (errno.EIO, str(path))
