"""Loading model versions from the repository: one load-verify-warm-up path for every model kind.

A version is served only after its ``model.json`` describes it, every file it is built from matches
the manifest's sha256 (hashed on the very bytes loaded, so a file replaced meanwhile cannot slip
through), its sessions pass their kind's contract check, and it has run once at each warm-up batch
size. A version that fails any of these is refused with one log line saying why, and the next older
version is tried. Two kinds are served: scoring models (scoring_model.py: one graph, the roles of
``/v1/score`` and V2 infer) and retrieval models (retrieval_model.py: two towers and a catalog, for
``/v1/similarity``), told apart by the manifest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from common.newer_manifest import NewerManifest
from common.regular_file import NOT_REGULAR, NotRegularFile, regular_file
from common.repository import MANIFEST_FILE, MODEL_FILE, Manifest, read_manifest, version_dir, versions
from service.models.base import ModelLoadError, ServedModel
from service.models.config import VersionPolicy
from service.models.onnx import open_session
from service.models.refusal import Files, Refusal, storage_failed, version_files
from service.models.retrieval_model import RetrievalModel, is_retrieval
from service.models.scoring_model import ScoringModel
from service.settings import Settings

logger = logging.getLogger(__name__)

# a serialised protobuf message has at most 2 GiB - 1 bytes: a larger model.onnx is refused before it is
# read (a sparse 3 GB file, hashed to be refused, took the process to 3.3 GB of memory)
ONNX_MAX_BYTES = 2**31 - 1


def load_version(
    root: Path, name: str, version: int, settings: Settings, required_outputs: Iterable[str] = ()
) -> ServedModel:
    """Verify, load and warm up one version; ModelLoadError says what is wrong with it."""
    directory = version_dir(root, name, version)
    try:
        manifest = read_manifest(root, name, version)
    except FileNotFoundError:
        raise ModelLoadError("model.json is missing") from None
    except NotRegularFile:  # a FIFO's open waited for a writer forever, the models' lock held
        raise ModelLoadError(f"{MANIFEST_FILE} {NOT_REGULAR}") from None
    except OSError as error:
        raise ModelLoadError(f"model.json cannot be read: {error.strerror or error}") from None
    except NewerManifest as error:  # not malformed: its own message says what it holds and what to do
        raise ModelLoadError(str(error)) from None
    except (ValueError, KeyError, TypeError) as error:  # json, FeatureSpec and dataclass errors
        raise ModelLoadError(f"model.json is malformed: {str(error).removeprefix(MANIFEST_FILE + ' ')}") from None
    if manifest.name != name or manifest.version != version:
        raise ModelLoadError(  # a version copied or renamed into another folder: where it belongs, said
            f"model.json describes {manifest.name!r} version {manifest.version}, not this folder's: a version is "
            f"served from its own folder only ({manifest.name}/{manifest.version}; publish a copy with ctr export)"
        )

    checked: set[str] = set()

    def read(file_name: str) -> bytes:
        data = verified_bytes(directory, file_name, manifest)
        checked.add(file_name)
        return data

    model: ServedModel
    if is_retrieval(manifest):
        model = RetrievalModel.build(manifest, read, settings)
    else:
        session, provider = open_session(read(MODEL_FILE), settings, MODEL_FILE)
        model = ScoringModel.build(manifest, session, provider, required_outputs, settings.max_string_chars)
    for file_name in sorted(manifest.file_sha256s.keys() - checked):
        # listed but not served (a retrieval version's model.onnx: its towers are): checked all the same, as
        # ``ctr prepare`` checks a version whole (common/repository.not_whole). Unchecked, a half-written esam
        # export was served while /v1/models and ctr_model_info published model.onnx's sha256 as checked
        read(file_name)
    model.warm_up(settings.warmup_batch_sizes)
    return model


def verified_bytes(directory: Path, file_name: str, manifest: Manifest) -> bytes:
    """A version file's bytes, after checking them against their sha256 in the manifest."""
    expected = manifest.file_sha256s.get(file_name)
    if expected is None:
        raise ModelLoadError(f"model.json lists no file {file_name!r}")
    try:
        with regular_file(directory / file_name) as file:
            size = os.fstat(file.fileno()).st_size  # of the file read, not of one put in its place meanwhile
            if file_name.endswith(".onnx") and size > ONNX_MAX_BYTES:
                raise ModelLoadError(
                    f"{file_name} has {size:,} bytes: an ONNX model holding all its data has at most "
                    f"{ONNX_MAX_BYTES:,} (protobuf's limit)"
                )
            data = file.read()
    except NotRegularFile:  # the file's name, not its path: a refusal's reason reaches clients (repository index)
        raise ModelLoadError(f"{file_name} {NOT_REGULAR}") from None
    except OSError as error:
        raise ModelLoadError(f"{file_name} cannot be read: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ModelLoadError(f"{file_name} sha256 {digest[:12]}... does not match model.json")
    return data


def load_versions(
    settings: Settings,
    name: str,
    policy: VersionPolicy,
    required_outputs: Iterable[str] = (),
    current: Mapping[int, ServedModel] | None = None,
    refused: dict[int, Refusal] | None = None,
    retried: Callable[[bool], str] | None = None,
    refused_before: Mapping[int, Refusal] | None = None,
    loaded_files: dict[int, Files] | None = None,
    tried: list[int] | None = None,
) -> dict[int, ServedModel]:
    """The versions of ``name`` to serve per ``policy``, newest first. Versions in ``current`` are kept
    as they are, and those in ``refused_before`` (refused by an earlier load, their files as they were)
    are passed over; each version refused is logged (with ``retried(storage_failed)``, when it will be
    loaded again, if anything loads it again) and noted in ``refused`` with its files as they were before the load; each
    version loaded is noted in ``loaded_files`` with its files as they were before the load, and each version
    read is added to ``tried`` as its read begins (what a warning of a load running long names). A
    version whose load fails in a way no check foresaw (a bug) is refused too, its traceback logged: the
    next older one is tried, and the service starts. ModelLoadError when none loads, or when the model's
    directory cannot be listed."""
    root = settings.model_repository
    current = current or {}
    refused = refused if refused is not None else {}
    refused_before = refused_before or {}
    try:
        available = versions(root, name)
    except OSError as error:  # a model directory the service may not list: said, as a version's refusal is
        raise ModelLoadError(f"the directory of model {name!r} cannot be listed: {error.strerror or error}") from None
    if not available:  # clients see it: no path (the manager's log line names it)
        where = "in the model repository" if root.is_dir() else "(the model repository does not exist)"
        raise ModelLoadError(f"no versions of model {name!r} {where}")
    chosen: dict[int, ServedModel] = {}
    tried = tried if tried is not None else []
    for version in policy.select(available):
        if policy.wanted is not None and len(chosen) >= policy.wanted:
            break
        if version in current:
            chosen[version] = current[version]
            continue
        if version in refused_before:
            continue
        tried.append(version)
        files = version_files(version_dir(root, name, version))  # before: a change during the load is one
        started = time.monotonic()
        try:
            model = chosen[version] = load_version(root, name, version, settings, required_outputs)
        except Exception as error:
            on_storage = storage_failed(error)
            if not isinstance(error, ModelLoadError):
                logger.exception("model %s version %d: unexpected error while loading", name, version)
                error = ModelLoadError(f"unexpected error while loading: {type(error).__name__}: {error}")
            again = retried(on_storage) if retried is not None else ""
            logger.warning("model %s version %d refused: %s%s", name, version, error, f" ({again})" if again else "")
            refused[version] = Refusal(str(error), files, storage_failed=on_storage)
            continue
        if loaded_files is not None:
            loaded_files[version] = files
        logger.info(  # its sha256 prefix: what an incident can name it by once the folder is gone
            "model %s version %d loaded (kind %s, provider %s, model.onnx sha256 %s..., %.2f s)",
            name,
            version,
            model.kind,
            model.provider,
            model.manifest.onnx_sha256[:12],
            time.monotonic() - started,
        )
        unranged = [n for n, stats in model.manifest.feature_spec.stats.items() if stats.low is None]
        if unranged:  # its clipped-values series stays at 0 whatever the unit of a value: say why
            logger.warning(
                "model %s version %d has no training range for %s (exported before ranges were kept, or from an "
                "earlier checkpoint): a value far outside what it was trained on is clipped at ±1e6 standard "
                "deviations only; train and export it again to clip to the range",
                name,
                version,
                unranged,
            )
    if not chosen:
        why = _none_loaded(policy, available, tried, refused, refused_before)
        raise ModelLoadError(f"no loadable version of model {name!r} ({why})")
    return chosen


def _none_loaded(
    policy: VersionPolicy,
    available: list[int],
    tried: list[int],
    refused: dict[int, Refusal],
    refused_before: Mapping[int, Refusal],
) -> str:
    """Why a load served nothing: the versions its policy names that are not in the repository, the
    versions tried, each with its reason (``specific = [7]`` with 1 and 2 there tries none), and those
    passed over as refused before, with theirs."""
    parts = []
    missing = [v for v in policy.specific if v not in available]
    if missing:
        parts.append(f"versions {missing} of its version policy are not in the repository, which holds {available}")
    if tried:
        parts += [f"tried {tried}", *(f"version {v}: {refused[v].why}" for v in tried if v in refused)]
    passed = [v for v in policy.select(available) if v in refused_before]
    if passed:
        parts += [f"refused before and unchanged {passed}", *(f"version {v}: {refused_before[v].why}" for v in passed)]
    return "; ".join(parts)


def load_newest(settings: Settings, name: str, required_outputs: Iterable[str] = ()) -> ServedModel:
    """The newest version of ``name`` that loads (benchmarks and tests); ModelLoadError when none does."""
    return next(iter(load_versions(settings, name, VersionPolicy(), required_outputs).values()))
