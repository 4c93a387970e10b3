"""An exported version opened for ``ctr evaluate`` as the service opens it, or refused as it refuses it.

``ctr evaluate`` reports on "the exported ONNX version (as served)", but it ran whatever model.onnx it
found: one replaced after export, which the service refuses (its sha256 no longer matches model.json),
got metrics (another model's), and a graph whose inputs did not fit the version's feature spec ended
in a 54-line ONNX Runtime traceback. So a version is loaded by the service's own loader
(``service.models.loader.load_version``: model.json read and matched to its directory, every file
against its sha256, the sessions opened on the CPU, their inputs and outputs against the manifest,
the warm-up), and a refusal is one ValueError naming the version and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path

from common.repository import MODEL_FILE, read_manifest, version_dir, versions
from service.models.base import ModelLoadError, ServedModel
from service.models.loader import load_version, verified_bytes
from service.models.onnx import open_session
from service.models.retrieval_model import RetrievalModel
from service.models.scoring_model import ScoringModel
from service.settings import Settings

CPU_DEFAULTS = Settings.model_construct(use_cuda=False)  # the defaults; not the CTR_* a shell holds for a service


def exported_version(root: Path, name: str, version: int | None = None) -> int:
    """``version``, or the newest exported version of ``name`` when None; FileNotFoundError when none is."""
    published = versions(root, name)
    if not published:
        raise FileNotFoundError(f"model {name!r} has no exported version under {root}: run `ctr export {name}`")
    return version or published[-1]


def served_version(root: Path, name: str, version: int) -> ServedModel:
    """Version ``version`` of ``name`` as the service would serve it, on the CPU; ValueError if refused."""
    try:
        return load_version(root, name, version, CPU_DEFAULTS)
    except ModelLoadError as error:
        raise _refused(root, name, version, error) from None


def scoring_model(root: Path, name: str, version: int) -> ScoringModel:
    """The version's model.onnx as the service runs it. A retrieval version, checked as the service loads
    it, has one too: its graph scores a query and an item together (what ``ctr evaluate --logs`` runs)."""
    model = served_version(root, name, version)
    if isinstance(model, ScoringModel):
        return model
    try:
        graph = verified_bytes(version_dir(root, name, version), MODEL_FILE, model.manifest)
        session, provider = open_session(graph, CPU_DEFAULTS, MODEL_FILE)
        return ScoringModel.build(model.manifest, session, provider, required_outputs=())
    except ModelLoadError as error:
        raise _refused(root, name, version, error) from None


def retrieval_model(root: Path, name: str, version: int) -> RetrievalModel:
    """The version's towers and catalog as the service runs them; ValueError for a scoring version."""
    model = served_version(root, name, version)
    if not isinstance(model, RetrievalModel):
        raise ValueError(f"{name} version {version} is no retrieval model (it has no query and item towers)")
    return model


def _refused(root: Path, name: str, version: int, error: ModelLoadError) -> ValueError:
    return ValueError(
        f"{name} version {version} is not what its model.json describes ({error}); the service refuses it too: "
        f"{_mend(root, name, version)}"
    )


def _mend(root: Path, name: str, version: int) -> str:
    """What to do about a refused version. One copied in under another number (or model) is refused for its
    place alone: "export it again" was no help to whoever had copied it from another repository."""
    try:
        manifest = read_manifest(root, name, version)
        own = version_dir(root, manifest.name, manifest.version)  # ValueError for a name no model may have
    except Exception:  # unreadable or malformed: the refusal before says so
        own = None
    if own is not None and own != version_dir(root, name, version):
        return (
            f"a version is served only in the folder its model.json names: copy it to {own} (where that number "
            f"is free), or publish its checkpoint with `ctr export {name}`, which numbers it"
        )
    return f"export it again with `ctr export {name}` (or remove the version)"
