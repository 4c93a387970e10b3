"""A retrieval model: a two-tower version (ESAM) behind ``POST /v1/similarity``.

A retrieval version directory holds, besides model.onnx, the graphs its manifest lists under ``files``
(one on the ``context`` side: the query tower; one on the ``candidate`` side: the item tower) and the
catalog's item embeddings with their ids. The loader (loader.py) hands over each file's bytes after
checking their sha256; here the towers' outputs must have the embeddings' width, and each tower runs
once before the version is served. Scores are S = sigmoid(scale * v_q . v_d + bias) with the
manifest's ``similarity_scale`` and ``similarity_bias``; top-k ranks the catalog by one matrix product
and ``np.argpartition``.

Served like the scoring models: versioned and reloaded by the model manager, with a batcher whose
batches are the encoded queries of concurrent requests, embedded by one query-tower run.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort

from common.encoder import FeatureEncoder
from common.repository import CATALOG_EMBEDDINGS, CATALOG_IDS, SIMILARITY_BIAS, SIMILARITY_SCALE, Manifest
from service.batching.policy import ServiceRate, Slice, Tensors, concat_slices
from service.models.base import ModelLoadError, ServedModel, warm_up_inputs
from service.models.onnx import open_session
from service.settings import Settings

SIDES = {"context": "query", "candidate": "item"}  # a graph's feature side -> the tower it is
SIMILARITY_CONSTANTS = (SIMILARITY_SCALE, SIMILARITY_BIAS)  # the constants a retrieval version needs
EMBEDDING = "embedding"  # the name of the query tower's output in the batcher's results


def is_retrieval(manifest: Manifest) -> bool:
    """Whether a version is a retrieval model's: tower graphs or a similarity constant (``build`` refuses
    one that lacks any of them; one missing a constant was loaded as a scoring model, which answered
    nothing)."""
    towers = any(f.side in SIDES for f in manifest.files.values())
    return bool(set(SIMILARITY_CONSTANTS) & set(manifest.constants)) or towers


def similarity_constants(manifest: Manifest) -> dict[str, float]:
    """The manifest's similarity constants; ModelLoadError unless each is a finite number (a NaN bias
    answered every score as null, a string stopped the service's start)."""
    constants = {}
    for name in SIMILARITY_CONSTANTS:
        value = manifest.constants.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ModelLoadError(f"model.json's constant {name} must be a finite number, not {value!r}")
        constants[name] = float(value)
    return constants


@dataclass(frozen=True, eq=False)
class Tower:
    session: ort.InferenceSession
    encoder: FeatureEncoder
    output: str

    def embed(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, L) unit embeddings of encoded inputs."""
        return self.session.run([self.output], dict(inputs))[0]


@dataclass(frozen=True, eq=False)
class RetrievalModel(ServedModel):
    manifest: Manifest
    query: Tower
    item: Tower
    embeddings: np.ndarray  # (N, L) float32, the catalog's item embeddings
    ids: np.ndarray  # (N,) str, their item ids
    provider: str
    scale: float  # the manifest's similarity_scale
    bias: float  # and its similarity_bias
    warm_up_rate: ServiceRate = field(init=False, default_factory=ServiceRate)

    @classmethod
    def build(cls, manifest: Manifest, read: Callable[[str], bytes], settings: Settings) -> RetrievalModel:
        """The model from its verified files (``read`` returns a listed file's checked bytes)."""
        constants = similarity_constants(manifest)  # before any graph is opened
        towers: dict[str, Tower] = {}
        provider = ""
        for file_name, info in manifest.files.items():
            if info.side not in SIDES:
                continue
            if SIDES[info.side] in towers or len(info.outputs) != 1:
                raise ModelLoadError(f"{file_name}: expected one graph per side with one output")
            session, provider = open_session(read(file_name), settings, file_name)
            try:
                encoder = FeatureEncoder(manifest.feature_spec.for_side(info.side), settings.max_string_chars)
            except ValueError as error:  # a spec without that side
                raise ModelLoadError(f"{file_name} cannot be loaded: {error}") from None
            towers[SIDES[info.side]] = Tower(session, encoder, info.outputs[0].name)
        if set(towers) != {"query", "item"}:
            raise ModelLoadError(f"a retrieval version needs a query and an item tower, found {sorted(towers)}")
        try:
            embeddings = np.load(io.BytesIO(read(CATALOG_EMBEDDINGS)), allow_pickle=False)
            ids = np.load(io.BytesIO(read(CATALOG_IDS)), allow_pickle=False)
        except ValueError as error:
            raise ModelLoadError(f"catalog arrays cannot be read: {error}") from None
        if embeddings.ndim != 2 or ids.shape != (embeddings.shape[0],) or embeddings.shape[0] == 0:
            raise ModelLoadError(f"catalog embeddings {embeddings.shape} and ids {ids.shape} do not match")
        if embeddings.dtype.kind not in "fiu":
            raise ModelLoadError(f"catalog embeddings are {embeddings.dtype}, not numbers")
        with np.errstate(over="ignore"):  # checked as served: float64's 1e39 is float32's inf (NaN dot products)
            embeddings = embeddings.astype(np.float32)
        rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
        if rows.size:  # such an item never ranked (or ranked with a null score)
            raise ModelLoadError(
                "catalog embeddings hold NaN or infinity (as float32, as served) in "
                + (f"row {rows[0]}" if rows.size == 1 else f"{rows.size} rows, the first {rows[0]}")
            )
        scale, bias = constants[SIMILARITY_SCALE], constants[SIMILARITY_BIAS]
        return cls(manifest, towers["query"], towers["item"], embeddings, ids, provider, scale, bias)

    @property
    def encoders(self) -> tuple[FeatureEncoder, ...]:
        return (self.query.encoder, self.item.encoder)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Tensors:
        """The batcher's run: (B, L) query embeddings of a batch of encoded queries."""
        return {EMBEDDING: self.query.embed(inputs)}

    def collate(self, batch: Sequence[Slice]) -> Tensors:
        return concat_slices(batch)

    def probability(self, dots: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.scale * dots.astype(np.float64) + self.bias)))

    def score_items(self, query: np.ndarray, items: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n,) S(q, d) of one query embedding (L,) against n encoded items."""
        return self.probability(self.item.embed(items) @ query)

    def top_k(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best catalog items for one query embedding (L,): (indices, S), best first, items of equal
        score in catalog order (docs/encoding.md). argpartition's pick among the items tied at the k-th
        score, and their order, were arbitrary: two identical items could swap between catalogs' loads."""
        dots = self.embeddings @ query  # (N,)
        k = min(k, dots.size)
        kth = np.partition(dots, dots.size - k)[dots.size - k]  # the k-th highest score
        above = np.flatnonzero(dots > kth)
        best = np.concatenate([above, np.flatnonzero(dots == kth)[: k - above.size]])
        best = best[np.lexsort((best, -dots[best]))]  # by score, then by catalog row
        return best, self.probability(dots[best])

    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """Each tower on ``warm_up_inputs``: its width must be the catalog's, its output finite. The query
        tower's largest run (the batcher's) is its ``warm_up_rate``."""
        batches = sorted({2, *batch_sizes})
        for tower in (self.query, self.item):
            for batch in batches:
                inputs = warm_up_inputs(tower.encoder.spec, batch)
                started = time.perf_counter()
                try:
                    output = tower.embed(inputs)
                except Exception as error:
                    raise ModelLoadError(f"warm-up failed: {error}") from None
                if tower is self.query and batch == batches[-1]:  # the query tower's run is the batcher's
                    self.warm_up_rate.observe(batch, time.perf_counter() - started)
                if output.shape != (batch, self.embeddings.shape[1]) or not np.isfinite(output).all():
                    raise ModelLoadError(f"tower output {output.shape} does not fit catalog {self.embeddings.shape}")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "catalog_items": int(self.ids.shape[0])}
