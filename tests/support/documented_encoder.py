"""A second implementation of the encoding, written from docs/encoding.md alone, as an ad server in another
language would write it: it imports nothing from this package (json, numpy and onnxruntime only), reads a
version's ``model.json`` as a plain dict, and computes value by value in Python where the package's encoder
is column-wise numpy. tests/integration/test_encoding_contract.py checks it against the running service:
where the page is short of a rule, the two differ."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MISSING = "__missing__"
STANDARDISED_LIMIT = 1e6
MIN_STD = 1e-12


def text_of(value: Any) -> str:
    """The text a categorical value is hashed as (the page's step 1)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a categorical value: {value!r}")
    if isinstance(value, float):
        if not (value.is_integer() and abs(value) < 2**53):
            raise ValueError(f"not a categorical value: {value!r}")
        value = int(value)
    return str(value).rstrip("\x00")


def fnv1a(text: str) -> int:
    """64-bit FNV-1a over the text's code points (step 2)."""
    h = FNV_OFFSET
    for char in text:
        h = ((h ^ ord(char)) * FNV_PRIME) % 2**64
    return h


class DocumentedEncoder:
    """One model input's encoding: the features of ``side`` (a retrieval tower's) or all of them."""

    def __init__(self, manifest: dict[str, Any], side: str | None = None) -> None:
        spec = manifest["feature_spec"]
        features = [f for f in spec["features"] if side is None or f["side"] == side]
        self.categorical = [f for f in features if f["kind"] == "categorical"]
        self.numeric = [f for f in features if f["kind"] == "numeric"]
        self.stats = spec["stats"]
        self.offsets, total = [], 0
        for feature in self.categorical:  # step 4: the buckets of the features before it
            self.offsets.append(total)
            total += feature["buckets"]

    def encode(self, context: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        rows = [{**context, **candidate} for candidate in candidates]
        features = list(zip(self.categorical, self.offsets, strict=True))
        categorical = np.array(
            [[self._index(f, offset, row.get(f["name"])) for f, offset in features] for row in rows], dtype=np.int64
        ).reshape(len(rows), len(self.categorical))
        numeric = np.array(
            [[self._standardised(f, row.get(f["name"])) for f in self.numeric] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(self.numeric))
        return {"categorical": categorical, "numeric": numeric.astype(np.float32)}

    @staticmethod
    def _index(feature: dict[str, Any], offset: int, value: Any) -> int:
        if value is None:
            value = feature.get("default", MISSING)
        return fnv1a(text_of(value)) % feature["buckets"] + offset

    def _standardised(self, feature: dict[str, Any], value: Any) -> float:
        if value is None:
            value = feature["default"]
        stats = self.stats[feature["name"]]
        std = max(stats["std"], MIN_STD)
        low = -math.inf if stats.get("low") is None else (stats["low"] - stats["mean"]) / std
        high = math.inf if stats.get("high") is None else (stats["high"] - stats["mean"]) / std
        x = float(value)
        if feature.get("transform") == "log1p":  # a count: its stats are of log(1 + x)
            x = math.log1p(x)
        z = (x - stats["mean"]) / std
        return min(max(z, max(low, -STANDARDISED_LIMIT)), min(high, STANDARDISED_LIMIT))


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def scores(version: Path, context: dict[str, Any], candidates: list[dict[str, Any]]) -> list[dict[str, float]]:
    """A scoring model filling both roles: the served numbers of each candidate ("The numbers served")."""
    manifest = json.loads((version / "model.json").read_text(encoding="utf-8"))
    inputs = DocumentedEncoder(manifest).encode(context, candidates)
    pctr, pcvr = (values.tolist() for values in _session(version / "model.onnx").run(["pctr", "pcvr"], inputs))
    return [{"pctr": a, "pctcvr": a * b, "pcvr": b} for a, b in zip(pctr, pcvr, strict=True)]


class DocumentedRetrieval:
    """A retrieval version's towers and catalog ("A retrieval model")."""

    def __init__(self, version: Path) -> None:
        manifest = json.loads((version / "model.json").read_text(encoding="utf-8"))
        self.towers = {
            info["side"]: (name, DocumentedEncoder(manifest, info["side"]))
            for name, info in manifest["files"].items()
            if info["side"]
        }
        self.version = version
        self.scale = manifest["constants"]["similarity_scale"]
        self.bias = manifest["constants"]["similarity_bias"]
        self.embeddings = np.load(version / "catalog_embeddings.npy")
        self.ids = np.load(version / "catalog_ids.npy")

    def _embed(self, side: str, context: dict[str, Any], rows: list[dict[str, Any]]) -> np.ndarray:
        name, encoder = self.towers[side]
        return _session(self.version / name).run(None, encoder.encode(context, rows))[0]

    def _similarity(self, dots: np.ndarray) -> list[float]:
        return [1.0 / (1.0 + math.exp(-(self.scale * float(d) + self.bias))) for d in dots]

    def item_scores(self, query: dict[str, Any], items: list[dict[str, Any]]) -> list[float]:
        q = self._embed("context", query, [{}])[0]
        return self._similarity(self._embed("candidate", {}, items) @ q)

    def top_k(self, query: dict[str, Any], k: int) -> list[tuple[str, float]]:
        dots = self.embeddings @ self._embed("context", query, [{}])[0]
        best = sorted(range(len(dots)), key=lambda i: (-dots[i], i))[:k]
        return list(zip([str(self.ids[i]) for i in best], self._similarity(dots[best]), strict=True))
