"""What every served model kind provides, and the error that refuses a version.

The loader (loader.py) builds a model of the kind its manifest describes; the manager gives it a
batcher over its ``collate`` and ``run``; ``/v1/models`` lists its ``describe()``. Two kinds exist:
scoring models (scoring_model.py) and retrieval models (retrieval_model.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from common.repository import Manifest
from service.batching.policy import ServiceRate, Slice, Tensors


class ModelLoadError(Exception):
    """A model version cannot be served; the message says why."""


class ServedModel(ABC):
    """A verified, warmed-up model version. Subclasses are frozen dataclasses with these fields."""

    manifest: Manifest
    provider: str  # the execution provider its sessions actually run on
    # its largest warm-up run, as its batcher runs a batch (items, seconds): the first estimate of its batcher's
    # service rate where no version's is taken over (manager.py). Measured from the first request after a
    # start (a single item, on paths not yet warm), a fresh replica put its rate at ~1/50 of the steady one
    # and refused 2-5 of the first 24 requests of a burst it ran in 130 ms as overloaded (an audit's runs).
    warm_up_rate: ServiceRate

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    @abstractmethod
    def encoders(self) -> tuple[FeatureEncoder, ...]:
        """The encoders of its raw features (each counts the values it clips to the training range)."""

    @abstractmethod
    def collate(self, batch: Sequence[Slice]) -> Tensors:
        """A batch's input tensors from the requests' slices (the batcher's payload is the model's)."""

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> Tensors:
        """Outputs by name for a batch of inputs; each output has one row per input row."""

    @abstractmethod
    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """Run once at each batch size before serving; ModelLoadError when the outputs are wrong."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for the models listing."""
        return {
            "name": self.name,
            "version": self.version,
            # what names this version on every machine (a version number is per repository: "esmm v1" is
            # another model on each), as model.json gives it and the loader checked the served bytes against
            "sha256": self.manifest.onnx_sha256,
            "kind": self.kind,
            "provider": self.provider,
            "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.manifest.inputs],
            "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.manifest.outputs],
            "features": [f.name for f in self.manifest.feature_spec.features],
            # those a request is refused without (the others read their default when absent)
            "required_features": [f.name for f in self.manifest.feature_spec.features if f.required],
            # the regime the service serves it in, said where model.json left it out (position-blind: "logged")
            "position": None
            if self.manifest.position is None
            else {"regime": self.manifest.regime} | self.manifest.position,
        }


def warm_up_inputs(spec: FeatureSpec, batch: int) -> dict[str, np.ndarray]:
    """``batch`` rows for a warm-up run: each categorical column at its feature's highest id (the last
    row of its embedding range), numeric columns at the training mean (0). Zeros, as before, touched no
    table's end: a model.json whose bucket counts outgrew its graph loaded, warmed up, and answered every
    request 500 (ONNX Runtime's Gather out of bounds); now it is refused at the load."""
    last_ids = np.cumsum([f.buckets for f in spec.categorical], dtype=np.int64) - 1
    try:
        return {
            "categorical": np.broadcast_to(last_ids, (batch, last_ids.size)).copy(),
            "numeric": np.zeros((batch, len(spec.numeric)), dtype=np.float32),
        }
    except (MemoryError, ValueError):  # numpy's "Unable to allocate 14.6 TiB", "array is too big": a traceback
        raise ModelLoadError(  # logged for every version, the operator's setting unnamed
            f"warm-up at batch size {batch:,}: its rows do not fit in memory (CTR_WARMUP_BATCH_SIZES; a batch holds "
            "at most its config.toml's [serving] max_batch_size items, 1024 by default, a request CTR_MAX_CANDIDATES)"
        ) from None
