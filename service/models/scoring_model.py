"""A scoring model: one ONNX graph from encoded features to per-candidate probabilities (DESIGN.md §3, §6).

Built by the loader (loader.py) once its ``model.onnx`` matched the manifest's sha256; here its
session's inputs and outputs are checked against the manifest and against the outputs its roles need,
and it runs once at each warm-up batch size before it is served. Its batches ``collate`` raw
``/v1/score`` rows (encoded together by one encoder call) and V2 infer tensors alike.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from common.encoder import FeatureEncoder
from common.features import MAX_CATEGORY_CHARS, Feature
from common.output_means import PROBABILITY_OUTPUTS
from common.repository import Manifest
from common.roles import ROLES
from service.batching.policy import ServiceRate, Slice, Tensors
from service.models.base import ModelLoadError, ServedModel, warm_up_inputs
from service.score.features import FeatureRows, encode_slices

logger = logging.getLogger(__name__)

# ONNX input name -> numpy dtype, as FeatureEncoder.as_inputs() produces them
INPUT_DTYPES: dict[str, np.dtype] = {"categorical": np.dtype(np.int64), "numeric": np.dtype(np.float32)}
# ONNX Runtime's type strings -> the numpy dtype names the manifest uses
ONNX_TYPES = {"tensor(int64)": "int64", "tensor(float)": "float32", "tensor(double)": "float64"}


@dataclass(frozen=True, eq=False)
class ScoringModel(ServedModel):
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
    transformed_features: tuple[Feature, ...] = field(init=False)  # their values checked against the domain
    warm_up_rate: ServiceRate = field(init=False, default_factory=ServiceRate)

    def __post_init__(self) -> None:
        spec = self.manifest.feature_spec
        object.__setattr__(self, "feature_names", frozenset(f.name for f in spec.features))
        object.__setattr__(self, "feature_kinds", {f.name: f.kind for f in spec.features})
        object.__setattr__(self, "required_features", tuple(f for f in spec.features if f.required))
        object.__setattr__(self, "transformed_features", tuple(f for f in spec.features if f.transform))

    @classmethod
    def build(
        cls,
        manifest: Manifest,
        session: ort.InferenceSession,
        provider: str,
        required_outputs: Iterable[str],
        max_string_chars: int = MAX_CATEGORY_CHARS,
    ) -> ScoringModel:
        """The model over a session, after checking its contract; ModelLoadError says what is wrong. Its
        encoder refuses a text longer than ``max_string_chars`` (the service's CTR_MAX_STRING_CHARS), as the
        request checks do."""
        try:
            encoder = FeatureEncoder(manifest.feature_spec, max_string_chars)
        except ValueError as error:
            raise ModelLoadError(str(error)) from None
        input_names, output_names = _check_contract(session, manifest, set(required_outputs))
        return cls(manifest, session, provider, encoder, input_names, output_names)

    @property
    def encoders(self) -> tuple[FeatureEncoder, ...]:
        return (self.encoder,)

    def run(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> Tensors:
        """Run the graph on encoded inputs (extra inputs are ignored); outputs by name, (batch,) each."""
        names = list(outputs) if outputs is not None else list(self.output_names)
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def encode(self, parts: Sequence[tuple[FeatureRows, int, int]], clipped: Counter | None = None) -> Tensors:
        """Input tensors for rows ``start:stop`` of each part, encoded together (score/features.py); the values
        clipped to the training range counted in ``clipped`` if given, else in the encoder's own count."""
        return encode_slices(self.encoder, self.feature_names, parts, clipped)

    def collate(self, batch: Sequence[Slice]) -> Tensors:
        """A batch's input tensors, in batch order: ``FeatureRows`` (``/v1/score``) are encoded together
        by one encoder call, requests that came as tensors (V2 infer) give their own rows."""
        raw = [(s.work.inputs, s.start, s.stop) for s in batch if isinstance(s.work.inputs, FeatureRows)]
        encoded = self.encode(raw) if raw else {}
        if len(raw) == len(batch):
            return encoded
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in self.input_names}
        offset = 0
        for s in batch:
            inputs = s.work.inputs
            if isinstance(inputs, FeatureRows):
                for name in self.input_names:
                    pieces[name].append(encoded[name][offset : offset + s.size])
                offset += s.size
            else:
                for name in self.input_names:
                    pieces[name].append(inputs[name][s.start : s.stop])
        return {name: parts[0] if len(parts) == 1 else np.concatenate(parts) for name, parts in pieces.items()}

    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """Run ``warm_up_inputs`` at each batch size; every output must be finite and shaped (batch,). The
        largest run's time is its ``warm_up_rate``. A probability output that is exactly 0 or 1 at every
        warm-up row is warned of (``_warn_saturated``): such a model loaded and served without a word."""
        batch_sizes = sorted(set(batch_sizes))  # the largest last: timed after the smaller ones warmed the session
        largest = batch_sizes[-1] if batch_sizes else None
        # probability output -> the values it gave while each was exactly 0 or 1 (left out at its first other)
        saturated: dict[str, set[float]] = {name: set() for name in self.output_names if name in PROBABILITY_OUTPUTS}
        for batch in batch_sizes:
            rows = warm_up_inputs(self.manifest.feature_spec, batch)
            inputs = {name: rows[name] for name in self.input_names}
            started = time.perf_counter()
            try:
                outputs = self.run(inputs)
            except Exception as error:  # an ORT runtime failure refuses the version
                raise ModelLoadError(f"warm-up at batch size {batch} failed: {error}") from None
            if batch == largest:
                self.warm_up_rate.observe(batch, time.perf_counter() - started)
            for name, value in outputs.items():
                if value.shape != (batch,):
                    raise ModelLoadError(
                        f"output {name!r} has shape {value.shape} at batch size {batch}, expected ({batch},)"
                    )
                if not np.isfinite(value).all():
                    raise ModelLoadError(f"output {name!r} is not finite at warm-up")
                if name in saturated:
                    if ((value == 0.0) | (value == 1.0)).all():
                        saturated[name].update(np.unique(value).tolist())
                    else:
                        del saturated[name]
        if saturated and batch_sizes:
            self._warn_saturated(saturated)

    def _warn_saturated(self, saturated: Mapping[str, set[float]]) -> None:
        """One warning naming each probability output that was exactly 0 or 1 at every warm-up row, its value(s)
        and the version: a model whose logits ran past the sigmoid's float32 range (a tower's bias off by ~100,
        a diverged training) answers 0 or 1 for every candidate, which ranks nothing, and the auction shows no ad
        of pCTR 0. It is served all the same: the outputs are valid probabilities, and a version refused on a
        guess would leave a role with no model."""
        said = "; ".join(
            f"{name} {' and '.join(str(value) for value in sorted(values))}" for name, values in saturated.items()
        )
        logger.warning(
            "model %s version %d is saturated: its warm-up scores are exactly 0 or 1 at every row (%s), as a sigmoid "
            "whose logits ran past float32's range gives them: it answers that for every candidate, which ranks "
            "nothing (an auction shows no ad of pCTR 0); it is served all the same: check its training and export",
            self.name,
            self.version,
            said,
        )


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
        needs = ", ".join(f"{r.name} needs {list(r.outputs)}" for r in ROLES if set(r.outputs) & set(missing))
        raise ModelLoadError(
            f"graph lacks output(s) {missing} needed by the role(s) it fills ({needs}); it has {list(output_names)}"
        )
    return input_names, output_names
