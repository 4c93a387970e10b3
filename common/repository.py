"""The model repository on disk (DESIGN.md §3), shared by the exporter (writes) and the service (reads).

```
<root>/<name>/config.toml            committed: kind, training and serving settings
<root>/<name>/<version>/model.onnx
<root>/<name>/<version>/model.json   the Manifest below
<root>/<name>/<version>/...          further files the manifest lists with their sha256 (``files``):
                                     e.g. query_tower.onnx, item_tower.onnx, catalog_embeddings.npy
```
Versions are positive integers of at most 18 digits, and a version's directory is named by its number as
written in ASCII digits without leading zeros: another name (``012``, ``٣``, ``0``, 19 digits, which no
route nor JSON answer carries back) is no version. A version directory appears atomically: it is written
under a hidden temporary name beside its final place and renamed, so a reader never sees half a version.

The hidden folders (``.staging-*`` in the model's folder) are removed by the export that made them, whether it
ends, fails or is stopped by SIGINT or SIGTERM (cli/signals.py). One left by an export killed outright (SIGKILL,
the OOM killer, a lost machine) is removed by a later export of the model once it is provably abandoned: no
process holds the ``flock`` its export keeps on it, and nothing in it has changed for ``STALE_STAGING_S`` by the
file system's clock (the one that stamps its mtimes), not this machine's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not a POSIX system
    fcntl = None  # type: ignore[assignment]

from common.config_table import UnknownKeys, checked_values
from common.disk_full import raise_if_disk_full
from common.features import FeatureSpec
from common.finite_json import finite
from common.flush_to_disk import flush_entries, flush_folder
from common.newer_manifest import newer_manifest, refuse_unknown_names, unknown_fields
from common.regular_file import NOT_REGULAR, NotRegularFile, read_regular_text, regular_file
from common.rename_no_replace import rename_no_replace
from common.roles import NO_MODEL
from common.toml_file import read_toml

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "model.json"
CATALOG_EMBEDDINGS = "catalog_embeddings.npy"  # a retrieval model's item embeddings, float32 (N, L)
CATALOG_IDS = "catalog_ids.npy"  # their item ids, a unicode array (N,)
CONFIG_FILE = "config.toml"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_VERSION_DIGITS = 18  # a version fits an int64, and orjson's answers (a 20-digit one was a 500 once served)
VERSION_NAME = re.compile(rf"[1-9][0-9]{{0,{MAX_VERSION_DIGITS - 1}}}")  # a version directory's name
# The examination a model's served pCTR / pCTCVR hold for (model.json's ``position.regime``):
SLOT1 = "slot1"  # the top slot; ``position.ctr_ratios[k - 1]`` is the learned CTR at slot k over slot 1
LOGGED = "logged"  # position-blind training: the average logged slot
REGIMES = (SLOT1, LOGGED)
POSITION_FIELDS = {"regime": str, "ctr_ratios": list}  # model.json's ``position``: its fields and their types
# model.json's ``constants``, by name. One can change what a score means (the service scores a retrieval
# model's pairs with the similarity scale and bias), so a constant this release does not know is refused
# (common/newer_manifest.py) rather than served without. ``b`` is recorded only: the export folds it into
# model.onnx, and no server reads it.
POSITION_B = "b"  # adversarial_ctr: the slot-1 position CTR its bias input is fixed at
SIMILARITY_SCALE = "similarity_scale"  # a retrieval model's score S = sigmoid(scale * v_q . v_d + bias)
SIMILARITY_BIAS = "similarity_bias"
CONSTANTS = (POSITION_B, SIMILARITY_SCALE, SIMILARITY_BIAS)
STAGING_PREFIX = ".staging-"  # a version being written: hidden from ``versions`` and from the service
# A staging folder unlocked is removed only once nothing in it has changed for this long: the moment between
# its mkdir and its export's flock, and a file system whose locks other machines do not see (an NFS mount
# with local_lock), leave the lock alone no proof; an export writes a file into its folder far more often.
STALE_STAGING_S = 3600.0
# What a version's folder holds where a file it needs should be, not how its storage reads it: a version with one
# of these is not whole (``not_whole``), as one of another sha256 is.
NO_FILE_THERE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, NotRegularFile)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # numpy dtype name: "int64", "float32"
    shape: list[int | str]  # "batch" for the dynamic axis


@dataclass(frozen=True)
class FileInfo:
    """A file of a version besides model.onnx: a further graph (with the feature side it reads and its
    tensors) or an array (e.g. a catalog's item embeddings); always with its sha256."""

    sha256: str
    side: str = ""  # a graph's feature side ("context" or "candidate"); "" for other files
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, section: str = "file") -> FileInfo:
        """The entry as model.json holds it; ValueError naming ``section`` and the field when a value is not
        of its type."""
        data = _checked_json(cls, data, section)
        inputs = _tensors(data.get("inputs", []), f"{section} inputs")
        outputs = _tensors(data.get("outputs", []), f"{section} outputs")
        return cls(data["sha256"], data.get("side", ""), inputs, outputs)


def _tensors(entries: list[Any], section: str) -> list[TensorInfo]:
    return [TensorInfo(**_checked_json(TensorInfo, t, f"{section}[{i}]")) for i, t in enumerate(entries)]


def _checked_json(cls: type, data: Any, section: str) -> dict[str, Any]:
    """``data`` when it fits the dataclass ``cls`` as JSON holds it (``checked_values``: its fields without a
    default required); a nested dataclass, or a list or table of them, is a JSON object, or a list or
    object of objects, checked when it is read in turn. ValueError naming ``section`` and the field."""
    expected = {}
    for name, hint in typing.get_type_hints(cls).items():
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if origin is list and arguments and dataclasses.is_dataclass(arguments[0]):
            hint = list[dict]
        elif dataclasses.is_dataclass(hint):
            hint = dict
        expected[name] = hint
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    return checked_values(expected, data, section, required)


@dataclass
class Manifest:
    """What ``model.json`` holds: enough to serve, audit and reproduce a version."""

    name: str
    version: int
    kind: str  # the model class, e.g. "esmm"
    opset: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    feature_spec: FeatureSpec
    onnx_sha256: str
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    constants: dict[str, float] = field(default_factory=dict)  # e.g. the fixed bias input b
    metrics: dict[str, Any] = field(default_factory=dict)  # evaluation at training time (numbers, and a list)
    data_fingerprint: str = ""  # sha256 over the training logs' content
    training: dict[str, Any] = field(default_factory=dict)  # the settings it was trained with
    files: dict[str, FileInfo] = field(default_factory=dict)  # further graphs and arrays, by file name
    # {"regime": "slot1" | "logged", "ctr_ratios": [1.0, r2, ...] (slot1 only)}; None: not a CTR model
    position: dict[str, Any] | None = None
    # the exporting code's commit and the versions of the packages that shape a score (common/provenance.py);
    # empty in a model.json written before it was recorded
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def file_sha256s(self) -> dict[str, str]:
        """Each file the version is built from, by name, and the sha256 it must have: ``model.onnx`` and the
        further graphs and arrays of ``files``."""
        return {MODEL_FILE: self.onnx_sha256, **{name: info.sha256 for name, info in self.files.items()}}

    @property
    def regime(self) -> str:
        """The position regime of the served probabilities; a version without ``position`` is position-blind."""
        return (self.position or {}).get("regime", LOGGED)

    def to_json(self) -> str:
        data = finite(asdict(self))  # a metric of a log without clicks is NaN: null, as JSON can hold it
        data["feature_spec"] = self.feature_spec.to_dict()
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest a model.json holds; ValueError naming the field when one is missing or not of its
        type (``"constants": null`` was a TypeError deep in the service's load, which stopped its start);
        NewerManifest (a ValueError) when it holds a field, statistic, position field or regime, or constant
        this release does not know (common/newer_manifest.py)."""
        written = json.loads(text)
        try:
            return cls._from_written(written)
        except UnknownKeys as error:
            section = error.section
            where = section if section.startswith(MANIFEST_FILE) else f"{MANIFEST_FILE} {section}"
            raise unknown_fields(where, error, written) from None

    @classmethod
    def _from_written(cls, written: Any) -> Manifest:
        data = dict(_checked_json(cls, written, MANIFEST_FILE))
        if data.get("position") is not None:
            position = checked_values(POSITION_FIELDS, data["position"], f"{MANIFEST_FILE} position")
            if position.get("regime", LOGGED) not in REGIMES:
                said = " or ".join(map(repr, REGIMES))
                raise newer_manifest(
                    f"{MANIFEST_FILE} position regime {position['regime']!r} is not one this release serves ({said})",
                    written,
                )
            for k, ratio in enumerate(position.get("ctr_ratios", [])):
                _check_ratio(k, ratio)
        refuse_unknown_names(f"{MANIFEST_FILE} constants", data.get("constants", {}), CONSTANTS, written)
        data["feature_spec"] = FeatureSpec.from_dict(data["feature_spec"])
        data["inputs"] = _tensors(data["inputs"], f"{MANIFEST_FILE} inputs")
        data["outputs"] = _tensors(data["outputs"], f"{MANIFEST_FILE} outputs")
        files = data.get("files", {})
        data["files"] = {
            name: FileInfo.from_dict(info, f"{MANIFEST_FILE} files[{name!r}]") for name, info in files.items()
        }
        return cls(**data)


def _check_ratio(k: int, ratio: Any) -> None:
    """ValueError unless ``position.ctr_ratios[k]`` is a finite number of 0 or more: JSON reads NaN, and a
    null, a string or a NaN ratio was published in /v1/models as it was, for clients to price slot k with.
    (The constants a server reads, a retrieval model's similarity scale and bias, are checked where they are
    read: service/models/retrieval_model.py.)"""
    number = isinstance(ratio, int | float) and not isinstance(ratio, bool)
    if not (number and math.isfinite(ratio) and ratio >= 0):
        raise ValueError(f"{MANIFEST_FILE} position ctr_ratios[{k}] is {ratio!r}, not a finite number of 0 or more")


def is_model_name(name: str) -> bool:
    """Whether ``name`` is a safe directory name for a model (no path escapes the repository)."""
    # fullmatch: "ctr\n" passes ^...$; NO_MODEL in any case is a role setting's "no model", never a model's name
    return bool(MODEL_NAME.fullmatch(name)) and name not in (".", "..") and name.lower() != NO_MODEL


def validate_model_name(name: str) -> str:
    """The name if it is a safe directory name (no path escapes the repository) and not ``NO_MODEL``, else
    ValueError."""
    if name.lower() == NO_MODEL:
        raise ValueError(
            f"model name {name!r} is reserved: a role setting of {NO_MODEL} (CTR_CTR_MODEL={NO_MODEL}) fills no role"
        )
    if not is_model_name(name):
        raise ValueError(f"model name {name!r} must match {MODEL_NAME.pattern}")
    return name


def read_config(root: Path, name: str) -> dict[str, Any]:
    return read_toml(root / validate_model_name(name) / CONFIG_FILE, regular_only=True)


def model_names(root: Path) -> list[str]:
    """The directories of ``root`` named as a model is, sorted; others (``lost+found`` at a volume's root,
    ``my model``, a hidden or non-UTF-8 name) are no model, as a directory in a model named otherwise than
    a version is no version."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_model_name(p.name) and p.is_dir())


def versions(root: Path, name: str) -> list[int]:
    """The model's published versions, ascending: its directories named as a version is (``VERSION_NAME``)."""
    model_dir = root / validate_model_name(name)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if VERSION_NAME.fullmatch(p.name) and p.is_dir())


def newest_whole_version(root: Path, name: str) -> int | None:
    """The newest version of ``name`` whose model.json reads and whose every file has the sha256 it lists (one
    the service could serve; one cut short by a power loss, or rewritten or copied in half, is not whole), or
    None. Read from the newest down, to the first whole one: not every file of a month of hourly versions.
    An OSError where the storage fails to read one (``not_whole``)."""
    return next((v for v in reversed(versions(root, name)) if not_whole(version_dir(root, name, v)) is None), None)


def not_whole(directory: Path) -> str | None:
    """Why the version in ``directory`` is not whole, or None when it is: a file it needs is missing or is no
    plain file, one does not have the sha256 its model.json lists, or model.json is not one this release reads.
    What the storage fails to read (a disk's EIO, a network mount's ESTALE or ETIMEDOUT, a file not the user's
    to read) tells nothing of the version: its OSError is raised, naming the file. Called "not whole", the
    version of a failing disk had ``ctr prepare`` train and publish a duplicate of it there."""
    try:
        manifest = Manifest.from_json(read_regular_text(directory / MANIFEST_FILE))
        for file, sha256 in manifest.file_sha256s.items():
            if sha256_file(directory / file) != sha256:
                return f"{file} does not have the sha256 {MANIFEST_FILE} lists"
    except NO_FILE_THERE as error:
        named = Path(error.filename).name
        return f"{named} {NOT_REGULAR}" if isinstance(error, NotRegularFile) else f"{named}: {error.strerror}"
    except ValueError as error:  # not JSON, not UTF-8, or not a manifest this release reads
        return f"{MANIFEST_FILE} does not read: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return None


def version_dir(root: Path, name: str, version: int) -> Path:
    return root / validate_model_name(name) / str(int(version))


def read_manifest(root: Path, name: str, version: int) -> Manifest:
    """The version's manifest; NotRegularFile (at once) where model.json is a FIFO, device or socket."""
    return Manifest.from_json(read_regular_text(version_dir(root, name, version) / MANIFEST_FILE))


def sha256_file(path: Path) -> str:
    """The sha256 of the file's content; NotRegularFile (at once) where it is a FIFO, device or socket."""
    digest = hashlib.sha256()
    with regular_file(path) as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _staging_directory(model_dir: Path) -> Path:
    """A new, empty directory in ``model_dir`` for a version being written, of the umask's mode (0755 under
    the usual 022) as ``mkdir`` makes it: mkdtemp's 0700 kept a service of another uid (the image's 10001,
    on a mounted repository) out of the published version, and setting the mode from ``os.umask`` would
    change the umask of every thread for a moment."""
    while True:
        staging = model_dir / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
        try:
            staging.mkdir()
            return staging
        except FileExistsError:
            continue
        except OSError as error:  # said of the model's folder, the one the user named, not of a hidden random name
            raise OSError(error.errno, error.strerror, str(model_dir)) from error


def check_publishable(root: Path, name: str) -> None:
    """Raise now the OSError that ``publish_version(root, name, ...)`` would end on for want of a place to write
    (a read-only mount, a folder the user may not write), so that a training of a minute is not spent first.
    A staging directory is made in the model's folder and removed: ``os.access`` reads the mode bits alone and
    answers that a folder on a read-only mount is writable. The model's folder must exist (its config.toml)."""
    _staging_directory(root / validate_model_name(name)).rmdir()


def publish_version(
    root: Path, name: str, write: Callable[[Path, int], None], check: Callable[[Path], None] | None = None
) -> int:
    """Write a new version atomically and return its number.

    ``write(directory, version)`` fills a temporary directory (the slow part, done by concurrent writers
    at once); then, one publisher of the model at a time (``_publishing``), staging folders abandoned by
    killed exports are removed, the version is numbered the next free one (the manifest renumbered to
    match), ``check(directory)`` may refuse it by raising (the exporter's duplicate check: run by each of
    two concurrent exports before either published, both published the same model), and it is renamed
    into place, never onto a path that exists (a folder another writer just made takes the next number),
    flushed to the disk before and after (common/flush_to_disk.py).
    """
    model_dir = root / validate_model_name(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = _staging_directory(model_dir)
    try:
        with _flocked(staging):  # held until the end: the proof, to other exporters, that it is in use
            written = (versions(root, name) or [0])[-1] + 1
            try:
                write(staging, written)
            except Exception as error:  # a full disk's names no file: the version's folder, not its hidden name
                said = f"(while writing a version of {name} in {model_dir})"
                raise_if_disk_full(error, model_dir, said)  # numpy's "1600 requested and 992 written": the ENOSPC
                if isinstance(error, OSError):
                    error.add_note(said)
                raise
            with _publishing(model_dir):
                _remove_abandoned_staging(model_dir, staging)
                version = (versions(root, name) or [0])[-1] + 1
                if len(str(version)) > MAX_VERSION_DIGITS:
                    raise ValueError(f"model {name!r} has a version of {MAX_VERSION_DIGITS} digits: no next version")
                if version != written:
                    _renumber(staging, version)
                if check is not None:
                    check(staging)
                while True:
                    flush_folder(staging)  # its files on the disk before its name (common/flush_to_disk.py)
                    try:
                        rename_no_replace(staging, model_dir / str(version))
                        flush_entries(model_dir)
                        return version
                    except FileExistsError:  # a writer that did not take the lock took it; the manifest must follow
                        version += 1
                        _renumber(staging, version)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _publishing(model_dir: Path) -> Iterator[None]:
    """Held by one publisher of a model at a time: an exclusive ``flock`` on the model's directory (no
    file left behind; released when the descriptor closes, the process's end included)."""
    with _flocked(model_dir):
        yield


@contextmanager
def _flocked(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory``, waited for; released when the descriptor closes, the
    process's end included, however it ends."""
    if fcntl is None:  # not a POSIX system: the rename's retry alone keeps versions apart
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _remove_abandoned_staging(model_dir: Path, own_staging: Path) -> None:
    """Remove the staging folders of exports that no longer run (see the module docstring): each one unchanged
    for ``STALE_STAGING_S`` whose ``flock`` this process can take, so no live export holds it. Ages are read on
    the file system's clock (``_file_system_now``, from ``own_staging``, this export's folder). Without ``flock``
    (not a POSIX system), or without that clock, nothing can be proved, and none is removed."""
    if fcntl is None:
        return
    try:
        now = _file_system_now(own_staging)
    except OSError:  # a file system that does not let its owner set a folder's times: no age can be trusted
        return
    for path in model_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if path.is_symlink() or now - _last_change(path) < STALE_STAGING_S:
                continue
            descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone meanwhile (its export published it), not a folder, or not ours to read
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: an export writing into it now
                continue
            shutil.rmtree(path, ignore_errors=True)
            logger.warning("removed %s, left by an export of %s that was killed", path, model_dir.name)
        finally:
            os.close(descriptor)


def _file_system_now(directory: Path) -> float:
    """The time now as the file system stamps mtimes: ``directory`` touched and its mtime read back. Where the
    lock proves nothing (between a folder's mkdir and its flock, an NFS mount with local_lock) the age is the
    only protection, and measured with ``time.time()`` a wall clock stepped an hour forward (NTP, a VM
    resumed), or a host an hour ahead of the NFS server that sets the mtimes, made a live export's freshly
    written folder look abandoned: it was removed under the export, which then failed."""
    os.utime(directory)
    return directory.stat().st_mtime


def _last_change(directory: Path) -> float:
    """The newest modification time of ``directory`` and of what it holds (an export writes its files there)."""
    with os.scandir(directory) as entries:
        return max([directory.stat().st_mtime, *(entry.stat(follow_symlinks=False).st_mtime for entry in entries)])


def _renumber(staging: Path, version: int) -> None:
    manifest_path = staging / MANIFEST_FILE
    if manifest_path.exists():
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
        manifest.version = version
        manifest_path.write_text(manifest.to_json(), encoding="utf-8")
