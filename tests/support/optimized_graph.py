"""The operators of an exported graph as ONNX Runtime runs it, for the tests of what the export leaves to run
per row."""

from __future__ import annotations

import onnx
import onnxruntime as ort

PER_ROW_BYPASS_OPS = {"Shape", "Expand", "ConstantOfShape", "Where"}  # b copied to every row, as exported before


def optimized_op_types(path, tmp_path) -> set[str]:
    """The operators of ``path``'s graph as ONNX Runtime runs it (after its optimisations, constant folding too)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
