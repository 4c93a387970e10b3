"""Loading one model from the repository: checksum, session, contract check, warm-up (DESIGN.md §3, §6).

A version is served only after its ``model.onnx`` matches the manifest's sha256, its session's inputs
and outputs match the manifest, it has the outputs its roles need, and it has run once at each warm-up
batch size. A version that fails any of these is refused with one log line saying why, and the next
older version is tried.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from common.encoder import FeatureEncoder
from common.features import Feature
from common.repository import MODEL_FILE, Manifest, read_manifest, version_dir, versions
from service.feature_rows import FeatureRows, encode_slices
from service.onnx_session import create_session
from service.settings import Settings

logger = logging.getLogger(__name__)

# ONNX input name -> numpy dtype, as FeatureEncoder.as_inputs() produces them
INPUT_DTYPES: dict[str, np.dtype] = {"categorical": np.dtype(np.int64), "numeric": np.dtype(np.float32)}
# ONNX Runtime's type strings -> the numpy dtype names the manifest uses
ONNX_TYPES = {"tensor(int64)": "int64", "tensor(float)": "float32", "tensor(double)": "float64"}


class ModelLoadError(Exception):
    """A model version cannot be served; the message says why."""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A verified, warmed-up model version, ready to run encoded inputs."""

    manifest: Manifest
    session: ort.InferenceSession
    provider: str  # the execution provider the session actually runs on
    encoder: FeatureEncoder
    input_names: tuple[str, ...]  # the inputs the graph declares (a subset of INPUT_DTYPES)
    output_names: tuple[str, ...]
    feature_names: frozenset[str] = field(init=False)
    feature_kinds: dict[str, str] = field(init=False)  # name -> "categorical" | "numeric"
    required_features: tuple[Feature, ...] = field(init=False)  # checked on every request

    def __post_init__(self) -> None:
        spec = self.manifest.feature_spec
        object.__setattr__(self, "feature_names", frozenset(f.name for f in spec.features))
        object.__setattr__(self, "feature_kinds", {f.name: f.kind for f in spec.features})
        object.__setattr__(self, "required_features", tuple(f for f in spec.features if f.required))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def kind(self) -> str:
        return self.manifest.kind

    def run(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the graph on encoded inputs (extra inputs are ignored); outputs by name, (batch,) each."""
        names = list(outputs) if outputs is not None else list(self.output_names)
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def encode(self, parts: Sequence[tuple[FeatureRows, int, int]]) -> dict[str, np.ndarray]:
        """Input tensors for rows ``start:stop`` of each part, encoded together (service/feature_rows.py)."""
        return encode_slices(self.encoder, self.feature_names, parts)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for the models listing."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "provider": self.provider,
            "inputs": [_tensor_dict(t.name, t.dtype, t.shape) for t in self.manifest.inputs],
            "outputs": [_tensor_dict(t.name, t.dtype, t.shape) for t in self.manifest.outputs],
            "features": [f.name for f in self.manifest.feature_spec.features],
            "position": self.manifest.position,
        }


def _tensor_dict(name: str, dtype: str, shape: Sequence[int | str | None]) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def load_latest(root: Path, name: str, settings: Settings, required_outputs: Iterable[str]) -> LoadedModel:
    """The newest version of ``name`` that loads; ModelLoadError when none does."""
    available = versions(root, name)
    if not available:
        raise ModelLoadError(f"no versions of model {name!r} under {root}")
    for version in reversed(available):
        try:
            model = load_version(root, name, version, settings, required_outputs)
        except ModelLoadError as error:
            logger.warning("model %s version %d refused: %s", name, version, error)
            continue
        logger.info("model %s version %d loaded (kind %s, provider %s)", name, version, model.kind, model.provider)
        return model
    raise ModelLoadError(f"no loadable version of model {name!r} (tried {sorted(available, reverse=True)})")


def load_version(
    root: Path, name: str, version: int, settings: Settings, required_outputs: Iterable[str]
) -> LoadedModel:
    """Verify, load and warm up one version; ModelLoadError says what is wrong with it."""
    directory = version_dir(root, name, version)
    try:
        manifest = read_manifest(root, name, version)
    except FileNotFoundError:
        raise ModelLoadError("model.json is missing") from None
    except OSError as error:
        raise ModelLoadError(f"model.json cannot be read: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError) as error:  # json, FeatureSpec and dataclass errors
        raise ModelLoadError(f"model.json is malformed: {error}") from None
    if manifest.name != name or manifest.version != version:
        raise ModelLoadError(f"model.json describes {manifest.name!r} version {manifest.version}")
    try:
        model_bytes = (directory / MODEL_FILE).read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{MODEL_FILE} cannot be read: {error.strerror or error}") from None
    # Hash the very bytes the session is built from, so a file replaced meanwhile cannot slip through.
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != manifest.onnx_sha256:
        raise ModelLoadError(f"{MODEL_FILE} sha256 {digest[:12]}... does not match model.json")
    try:
        encoder = FeatureEncoder(manifest.feature_spec)
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    try:
        session, provider = create_session(model_bytes, settings)
    except Exception as error:  # ORT raises its own exception types for invalid graphs
        raise ModelLoadError(f"ONNX Runtime cannot load {MODEL_FILE}: {error}") from None
    input_names, output_names = _check_contract(session, manifest, set(required_outputs))
    model = LoadedModel(manifest, session, provider, encoder, input_names, output_names)
    _warm_up(model, settings.warmup_batch_sizes)
    return model


def _check_contract(
    session: ort.InferenceSession, manifest: Manifest, required_outputs: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The session's input and output names after checking them against the manifest and the roles."""
    spec = manifest.feature_spec
    widths = {"categorical": len(spec.categorical), "numeric": len(spec.numeric)}
    declared = {t.name: t for t in manifest.inputs}
    inputs = session.get_inputs()
    for tensor in inputs:
        if tensor.name not in INPUT_DTYPES:
            raise ModelLoadError(f"graph input {tensor.name!r} is not one of {sorted(INPUT_DTYPES)}")
        dtype = ONNX_TYPES.get(tensor.type, tensor.type)
        if dtype != INPUT_DTYPES[tensor.name].name:
            raise ModelLoadError(f"graph input {tensor.name!r} is {dtype}, expected {INPUT_DTYPES[tensor.name]}")
        if tensor.name not in declared or declared[tensor.name].dtype != dtype:
            raise ModelLoadError(f"graph input {tensor.name!r} ({dtype}) is not declared so in model.json")
        if len(tensor.shape) != 2:
            raise ModelLoadError(f"graph input {tensor.name!r} has shape {tensor.shape}, expected (batch, width)")
        width = tensor.shape[1]
        if isinstance(width, int) and width != widths[tensor.name]:
            raise ModelLoadError(
                f"graph input {tensor.name!r} has width {width} but the feature spec encodes "
                f"{widths[tensor.name]} {tensor.name} features"
            )
    input_names = tuple(t.name for t in inputs)
    if set(declared) != set(input_names):
        raise ModelLoadError(f"model.json declares inputs {sorted(declared)}, the graph has {sorted(input_names)}")
    output_names = tuple(t.name for t in session.get_outputs())
    if {t.name for t in manifest.outputs} != set(output_names):
        raise ModelLoadError(
            f"model.json declares outputs {sorted(t.name for t in manifest.outputs)}, "
            f"the graph has {sorted(output_names)}"
        )
    missing = sorted(required_outputs - set(output_names))
    if missing:
        raise ModelLoadError(f"graph lacks output(s) {missing} needed by its role(s); it has {list(output_names)}")
    return input_names, output_names


def _warm_up(model: LoadedModel, batch_sizes: Iterable[int]) -> None:
    """Run zero inputs at each batch size; every output must be finite and shaped (batch,)."""
    spec = model.manifest.feature_spec
    widths = {"categorical": len(spec.categorical), "numeric": len(spec.numeric)}
    for batch in batch_sizes:
        inputs = {name: np.zeros((batch, widths[name]), dtype=INPUT_DTYPES[name]) for name in model.input_names}
        try:
            outputs = model.run(inputs)
        except Exception as error:  # an ORT runtime failure refuses the version
            raise ModelLoadError(f"warm-up at batch size {batch} failed: {error}") from None
        for name, value in outputs.items():
            if value.shape != (batch,):
                raise ModelLoadError(
                    f"output {name!r} has shape {value.shape} at batch size {batch}, expected ({batch},)"
                )
            if not np.isfinite(value).all():
                raise ModelLoadError(f"output {name!r} is not finite at warm-up")
