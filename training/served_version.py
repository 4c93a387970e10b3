"""An exported version opened for ``ctr evaluate`` as the service opens it, or refused as it refuses it.

``ctr evaluate`` reports on "the exported ONNX version (as served)", but it ran whatever model.onnx it
found: one replaced after export, which the service refuses (its sha256 no longer matches model.json),
got metrics (another model's), and a graph whose inputs did not fit the version's feature spec ended
in a 54-line ONNX Runtime traceback. So the files go through the service's own checks: their bytes
against model.json's sha256 (``verified_bytes``), the session as the service opens it on the CPU
(``open_session``) and its inputs and outputs against the manifest (``ScoringModel.build``). A refusal
is one ValueError naming the version and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path

from common.repository import MODEL_FILE, Manifest, read_manifest, version_dir
from service.models.base import ModelLoadError
from service.models.loader import verified_bytes
from service.models.onnx import open_session
from service.models.scoring_model import ScoringModel
from service.settings import Settings


def verified_file(root: Path, name: str, version: int, manifest: Manifest, file_name: str) -> bytes:
    """The bytes of a version's file once they match model.json's sha256; ValueError as the service refuses."""
    try:
        return verified_bytes(version_dir(root, name, version), file_name, manifest)
    except ModelLoadError as error:
        raise _refused(name, version, error) from None


def scoring_model(root: Path, name: str, version: int) -> ScoringModel:
    """Version ``version`` of ``name``'s model.onnx as the service would run it, on the CPU."""
    manifest = read_manifest(root, name, version)
    settings = Settings.model_construct(use_cuda=False)  # the defaults; not the CTR_* a shell holds for a service
    try:
        session, provider = open_session(verified_file(root, name, version, manifest, MODEL_FILE), settings, MODEL_FILE)
        return ScoringModel.build(manifest, session, provider, required_outputs=())
    except ModelLoadError as error:
        raise _refused(name, version, error) from None


def _refused(name: str, version: int, error: ModelLoadError) -> ValueError:
    return ValueError(
        f"{name} version {version} is not what its model.json describes ({error}); the service refuses it too: "
        f"export it again with `ctr export {name}` (or remove the version)"
    )
