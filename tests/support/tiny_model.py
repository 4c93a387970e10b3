"""A real, tiny ESMM-shaped ONNX model built with onnx.helper (no torch), published to a repository.

categorical (B, C) int64 -> Gather over an embedding table, summed over features -> (B, D)
numeric (B, N) float32 -> MatMul -> (B, D); their sum h feeds two logistic heads:
pctr = sigmoid(h @ w_ctr), pcvr = sigmoid(h @ w_cvr), pctcvr = pctr * pcvr, each (B,).

``weighted_pooling``: the embeddings are pooled by a weight per feature (Einsum ``bcd,c->bd``, as the trained
ESMM's interaction is) in 18 dimensions, where ONNX Runtime's sums round by batch size: the same row's
scores differ by a float32 step between a run of 7 rows and one of 40 (the plain sum's do not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common.features import Feature, FeatureSpec, NumericStats
from common.repository import MANIFEST_FILE, MODEL_FILE, Manifest, TensorInfo, publish_version

EMBEDDING_DIM = 4
WEIGHTED_EMBEDDING_DIM = 18  # the trained ESMM's; at 4, 8 or 16 the Einsum's sums do not depend on the batch

SPEC = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=50),
        Feature("hour", "categorical", "context", buckets=24, required=False),
        Feature("ad_id", "categorical", "candidate", buckets=100),
        Feature("ad_price", "numeric", "candidate"),
        Feature("ad_quality", "numeric", "candidate", required=False, default=0.5),
    ),
    {"ad_price": NumericStats(mean=10.0, std=4.0), "ad_quality": NumericStats(mean=0.5, std=0.2)},
)
# SPEC with the training ranges a served model clips request values to (standardised: ad_price [-2.25, 5],
# ad_quality [-2.5, 2.5])
RANGED = SPEC.with_stats(
    {"ad_price": NumericStats(10.0, 4.0, low=1.0, high=30.0), "ad_quality": NumericStats(0.5, 0.2, low=0.0, high=1.0)}
)


ESMM_OUTPUTS = ("pctr", "pcvr", "pctcvr")


# edits a model's weights in place before they are written (name -> array: "table", "w_ctr", ...), as a
# training run gone wrong would leave them (a NaN embedding row, a saturated head)
WeightsEdit = Callable[[dict[str, np.ndarray]], None]


def build_onnx(
    spec: FeatureSpec,
    outputs: tuple[str, ...] = ESMM_OUTPUTS,
    seed: int = 0,
    weighted_pooling: bool = False,
    edit: WeightsEdit | None = None,
) -> bytes:
    rng = np.random.default_rng(seed)
    c, n = len(spec.categorical), len(spec.numeric)
    d = WEIGHTED_EMBEDDING_DIM if weighted_pooling else EMBEDDING_DIM
    weights = {
        "table": rng.normal(0, 0.5, (spec.total_buckets, d)).astype(np.float32),
        "w_numeric": rng.normal(0, 0.5, (n, d)).astype(np.float32),
        "w_ctr": rng.normal(0, 0.5, (d, 1)).astype(np.float32),
        "w_cvr": rng.normal(0, 0.5, (d, 1)).astype(np.float32),
    }
    if edit is not None:
        edit(weights)
    initializers = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"))
    pooling = helper.make_node("ReduceSum", ["embedded", "axis_1"], ["pooled"], keepdims=0)
    if weighted_pooling:
        weights = rng.normal(1.0, 0.5, (c,)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weights, "feature_weights"))
        pooling = helper.make_node("Einsum", ["embedded", "feature_weights"], ["pooled"], equation="bcd,c->bd")
    nodes = [
        helper.make_node("Gather", ["table", "categorical"], ["embedded"]),  # (B, C, D)
        pooling,  # (B, D)
        helper.make_node("MatMul", ["numeric", "w_numeric"], ["dense"]),  # (B, D)
        helper.make_node("Add", ["pooled", "dense"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "w_ctr"], ["ctr_logit"]),  # (B, 1)
        helper.make_node("MatMul", ["hidden", "w_cvr"], ["cvr_logit"]),
        helper.make_node("Squeeze", ["ctr_logit", "axis_1"], ["ctr_flat"]),  # (B,)
        helper.make_node("Squeeze", ["cvr_logit", "axis_1"], ["cvr_flat"]),
        helper.make_node("Sigmoid", ["ctr_flat"], ["pctr"]),
        helper.make_node("Sigmoid", ["cvr_flat"], ["pcvr"]),
        helper.make_node("Mul", ["pctr", "pcvr"], ["pctcvr"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_esmm",
        [
            helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", c]),
            helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", n]),
        ],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch"]) for name in outputs],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def publish_tiny_esmm(
    root: Path,
    name: str = "esmm",
    outputs: tuple[str, ...] = ESMM_OUTPUTS,
    seed: int = 0,
    spec: FeatureSpec = SPEC,
    position: dict | None = None,
    weighted_pooling: bool = False,
    metrics: dict[str, float] | None = None,
    edit: WeightsEdit | None = None,
) -> int:
    """Write the tiny model as the next version of ``name`` under ``root`` (``position``: model.json's
    position regime object, ``metrics`` its training-time metrics, ``edit`` what is done to its weights);
    returns the version."""
    model_bytes = build_onnx(spec, outputs, seed, weighted_pooling, edit)

    def write(directory: Path, version: int) -> None:
        (directory / MODEL_FILE).write_bytes(model_bytes)
        manifest = Manifest(
            name=name,
            version=version,
            kind="esmm",
            opset=17,
            inputs=[
                TensorInfo("categorical", "int64", ["batch", len(spec.categorical)]),
                TensorInfo("numeric", "float32", ["batch", len(spec.numeric)]),
            ],
            outputs=[TensorInfo(output, "float32", ["batch"]) for output in outputs],
            feature_spec=spec,
            onnx_sha256=hashlib.sha256(model_bytes).hexdigest(),
            position=position,
            metrics=metrics or {},
        )
        (directory / MANIFEST_FILE).write_text(manifest.to_json())

    return publish_version(root, name, write)
