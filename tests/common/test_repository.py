import dataclasses
import errno
import hashlib
import json
import os
import stat

import pytest

from common.features import Feature, FeatureSpec
from common.regular_file import NOT_REGULAR, NotRegularFile
from common.repository import (
    MANIFEST_FILE,
    Manifest,
    TensorInfo,
    model_names,
    newest_whole_version,
    not_whole,
    publish_version,
    read_config,
    read_manifest,
    sha256_file,
    validate_model_name,
    version_dir,
    versions,
)
from tests.support.fifo import fifo_at


def manifest(version: int) -> Manifest:
    return Manifest(
        name="m",
        version=version,
        kind="esmm",
        opset=17,
        inputs=[TensorInfo("categorical", "int64", ["batch", 1])],
        outputs=[TensorInfo("pctr", "float32", ["batch"])],
        feature_spec=FeatureSpec((Feature("x", "categorical", "context", buckets=4),)),
        onnx_sha256="0" * 64,
    )


def writer(directory, version):
    (directory / MANIFEST_FILE).write_text(manifest(version).to_json())


def test_versions_are_published_in_order_and_readable(tmp_path):
    assert versions(tmp_path, "m") == []
    assert publish_version(tmp_path, "m", writer) == 1
    assert publish_version(tmp_path, "m", writer) == 2
    assert versions(tmp_path, "m") == [1, 2]
    written = read_manifest(tmp_path, "m", 2)  # created: the second it was written, not the second manifest(2) ran
    assert written == dataclasses.replace(manifest(2), created=written.created)
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]  # no staging left


def test_a_version_directory_is_readable_by_others_as_the_umask_allows(tmp_path):
    """mkdtemp stages with 0700: a service running as another user (the Docker image's uid 10001 on a
    mounted repository) could not read a version published that way."""
    previous = os.umask(0o022)
    try:
        publish_version(tmp_path, "m", writer)
        assert stat.S_IMODE((tmp_path / "m" / "1").stat().st_mode) == 0o755
        os.umask(0o077)
        publish_version(tmp_path, "m", writer)
        assert stat.S_IMODE((tmp_path / "m" / "2").stat().st_mode) == 0o700
    finally:
        os.umask(previous)


def test_a_failed_write_leaves_no_version(tmp_path):
    def failing(directory, version):
        (directory / "model.onnx").write_bytes(b"half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        publish_version(tmp_path, "m", failing)
    assert versions(tmp_path, "m") == []
    assert list((tmp_path / "m").iterdir()) == []


def test_manifest_is_plain_json():
    data = json.loads(manifest(3).to_json())
    assert data["version"] == 3
    assert data["feature_spec"]["features"][0]["name"] == "x"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".", "..", "x" * 65, "-lead"])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(ValueError):
        validate_model_name(name)


@pytest.mark.parametrize("name", ["none", "None", "NONE"])
def test_none_is_no_model_s_name(tmp_path, name):
    """A role setting of none fills no role (a retrieval service): no model is named so, and a folder so named
    is none (``model_names``), so the word never names a model by accident."""
    with pytest.raises(ValueError, match="is reserved: a role setting of none"):
        validate_model_name(name)
    (tmp_path / name / "1").mkdir(parents=True)
    assert model_names(tmp_path) == []


def test_concurrent_publishers_check_against_each_others_versions(tmp_path):
    """Two exports of one checkpoint, written at the same time: each checked for a duplicate before either
    had published, and both published. The check now runs one publisher at a time, after the numbering."""
    import threading

    both_writing = threading.Barrier(2)
    seen: list[list[int]] = []

    def slow_writer(directory, version):
        both_writing.wait(timeout=10)  # each has numbered its version 1 before either publishes
        writer(directory, version)

    def refuse_a_second_copy(directory):
        seen.append(versions(tmp_path, "m"))
        assert json.loads((directory / MANIFEST_FILE).read_text())["version"] == len(seen)  # renumbered
        if seen[-1]:
            raise FileExistsError("already published")

    outcomes: list[object] = []

    def publish():
        try:
            outcomes.append(publish_version(tmp_path, "m", slow_writer, refuse_a_second_copy))
        except FileExistsError as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == [[], [1]] and versions(tmp_path, "m") == [1]
    assert sorted(map(type, outcomes), key=str) == sorted([int, FileExistsError], key=str)
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]


def test_a_metric_that_is_nan_is_written_as_null():
    """A model trained on a log without clicks has a NaN AUC: model.json held ``NaN``, which is no JSON
    (jq and JSON.parse refused the file)."""
    with_nan = manifest(1)
    with_nan.metrics = {"ctr_auc": float("nan"), "logloss": 0.25}
    text = with_nan.to_json()
    assert "NaN" not in text and json.loads(text)["metrics"] == {"ctr_auc": None, "logloss": 0.25}


def test_a_version_folder_made_after_the_numbering_is_not_taken_over(tmp_path, monkeypatch):
    """``os.rename`` replaces an EMPTY target folder: an operator's ``cp -r`` that had just made ``m/1/`` got the
    exporter's version, and then wrote into it. The version takes the next free number instead, with
    renameat2(RENAME_NOREPLACE) and with the check before ``os.rename`` where the C library lacks it."""

    def operator_copies_in(directory):  # run once numbered, just before the rename
        (directory.parent / "1").mkdir()

    for root in (tmp_path / "linux", tmp_path / "elsewhere"):
        if root.name == "elsewhere":  # a C library without renameat2: the check before os.rename
            from common import rename_no_replace

            monkeypatch.setattr(rename_no_replace, "RENAMEAT2", None)
        assert publish_version(root, "m", writer, operator_copies_in) == 2
        assert list((root / "m" / "1").iterdir()) == []  # the operator's folder, as it was
        written = read_manifest(root, "m", 2)  # created: the second it was written, not the second manifest(2) ran
        assert written == dataclasses.replace(manifest(2), created=written.created)


def test_staging_folders_of_killed_exports_are_removed_and_no_live_export_s_is(tmp_path):
    """SIGKILL or the OOM killer left ``.staging-*`` folders in the model's folder for good. The next export
    removes those no process holds the lock of and in which nothing has changed for ``STALE_STAGING_S``; an
    export in progress (its lock held, however old its folder) and a folder just made keep theirs."""
    import fcntl

    from common.repository import STALE_STAGING_S

    model = tmp_path / "m"
    long_ago = os.path.getmtime(tmp_path) - STALE_STAGING_S - 60
    folders = {}
    for name in ("killed", "in-progress", "just-made"):
        folders[name] = model / f".staging-{name}"
        folders[name].mkdir(parents=True)
        (folders[name] / "model.onnx").write_bytes(b"half")
        if name != "just-made":
            os.utime(folders[name] / "model.onnx", (long_ago, long_ago))
            os.utime(folders[name], (long_ago, long_ago))
    held = os.open(folders["in-progress"], os.O_RDONLY)  # what publish_version holds while an export writes
    try:
        fcntl.flock(held, fcntl.LOCK_EX)

        def write_locked(directory, version):  # this export's own folder is held while it is written
            probe = os.open(directory, os.O_RDONLY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(probe)
            writer(directory, version)

        assert publish_version(tmp_path, "m", write_locked) == 1
    finally:
        os.close(held)
    assert sorted(p.name for p in model.iterdir()) == [".staging-in-progress", ".staging-just-made", "1"]


def test_a_wall_clock_stepped_forward_does_not_make_a_live_export_s_staging_folder_look_abandoned(
    tmp_path, monkeypatch
):
    """Where the lock proves nothing (between a folder's mkdir and its flock, NFS with local_lock) its age is
    the only protection. Measured with ``time.time()``, a clock stepped an hour forward (NTP, a VM resumed, a
    host ahead of the NFS server that stamps the mtimes) made a live export's just-written, unlocked folder an
    hour old, and it was removed under the export. Ages are read on the file system's clock: the live folder
    stays, and one truly abandoned by that clock is still removed."""
    import time

    from common.repository import STALE_STAGING_S

    model = tmp_path / "m"
    folders = {name: model / f".staging-{name}" for name in ("live-unlocked", "killed")}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"half")
    long_ago = os.path.getmtime(folders["killed"]) - STALE_STAGING_S - 60
    os.utime(folders["killed"] / "model.onnx", (long_ago, long_ago))
    os.utime(folders["killed"], (long_ago, long_ago))
    stepped = time.time() + STALE_STAGING_S + 1
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert publish_version(tmp_path, "m", writer) == 1
    assert sorted(p.name for p in model.iterdir()) == [".staging-live-unlocked", "1"]


def test_a_version_whose_files_do_not_match_model_json_is_not_whole(tmp_path):
    def writer_of(onnx: bytes):
        def write(directory, version):
            (directory / "model.onnx").write_bytes(onnx)
            written = manifest(version)
            written.onnx_sha256 = hashlib.sha256(b"graph").hexdigest()
            (directory / MANIFEST_FILE).write_text(written.to_json())

        return write

    assert newest_whole_version(tmp_path, "m") is None
    for onnx in (b"graph", b"", b"gra"):  # whole, left empty, cut short
        publish_version(tmp_path, "m", writer_of(onnx))
    publish_version(tmp_path, "m", lambda directory, version: (directory / MANIFEST_FILE).write_text("{"))
    assert versions(tmp_path, "m") == [1, 2, 3, 4]
    assert newest_whole_version(tmp_path, "m") == 1
    publish_version(tmp_path, "m", writer_of(b"graph"))
    assert newest_whole_version(tmp_path, "m") == 5


def publish_whole(root, name="m") -> int:
    def write(directory, version):
        (directory / "model.onnx").write_bytes(b"graph")
        written = manifest(version)
        written.onnx_sha256 = hashlib.sha256(b"graph").hexdigest()
        (directory / MANIFEST_FILE).write_text(written.to_json())

    return publish_version(root, name, write)


@pytest.mark.parametrize("file", ["model.onnx", MANIFEST_FILE])
def test_a_version_with_a_fifo_for_a_file_is_not_whole_and_said_so_at_once(tmp_path, file):
    """``ctr prepare`` hung on it without a word (sha256_file's open waited for a writer)."""
    publish_whole(tmp_path)
    publish_whole(tmp_path)
    with fifo_at(version_dir(tmp_path, "m", 2) / file):
        assert not_whole(version_dir(tmp_path, "m", 2)) == f"{file} {NOT_REGULAR}"
        assert newest_whole_version(tmp_path, "m") == 1
        with pytest.raises(NotRegularFile):
            read_manifest(tmp_path, "m", 2) if file == MANIFEST_FILE else sha256_file(
                version_dir(tmp_path, "m", 2) / file
            )


def test_a_config_that_is_a_fifo_is_refused_at_once(tmp_path):
    (tmp_path / "m").mkdir()
    with fifo_at(tmp_path / "m" / "config.toml"), pytest.raises(NotRegularFile, match=r"config\.toml is not a regular"):
        read_config(tmp_path, "m")


def test_why_a_version_is_not_whole(tmp_path):
    publish_whole(tmp_path)
    directory = version_dir(tmp_path, "m", 1)
    assert not_whole(directory) is None
    (directory / "model.onnx").write_bytes(b"gra")
    assert not_whole(directory) == f"model.onnx does not have the sha256 {MANIFEST_FILE} lists"
    (directory / "model.onnx").unlink()
    (directory / "model.onnx").mkdir()
    assert not_whole(directory) == "model.onnx: Is a directory"
    (directory / "model.onnx").rmdir()
    assert not_whole(directory) == "model.onnx: No such file or directory"
    (directory / MANIFEST_FILE).write_text("{")
    assert not_whole(directory).startswith(f"{MANIFEST_FILE} does not read: ")


def test_a_version_the_storage_fails_to_read_is_not_called_not_whole(tmp_path, monkeypatch):
    """An EIO reading version 2 made it "not whole": version 1 was taken for the newest whole one, or, with
    none, ``ctr prepare`` trained and published a duplicate on the failing disk. The error is raised, naming
    the file."""
    publish_whole(tmp_path)
    publish_whole(tmp_path)
    failing = version_dir(tmp_path, "m", 2) / "model.onnx"
    real_open = os.open

    def open_failing(path, *args, **kwargs):
        if str(path) == str(failing):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_failing)
    with pytest.raises(OSError) as failed:
        newest_whole_version(tmp_path, "m")
    assert (failed.value.errno, failed.value.filename) == (errno.EIO, str(failing))
