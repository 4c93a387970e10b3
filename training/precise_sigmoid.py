"""Exported probabilities to float32's relative precision: each ONNX ``Sigmoid`` node written out as
1 / (1 + exp(-x)).

ONNX Runtime's CPU Sigmoid is exact to about 6e-8 *absolute*, not relative: near p = 0.0017 it moves in
steps of ~1e-7 (7e-5 of p), at p = 1e-4 it is off by up to 0.1 %, at p = 6e-6 by 2 % and below ~1e-7 it
answers 0 (`python reports/sigmoid_precision.py`). A click probability of an ad slot is often that small,
and a pCTCVR smaller still, so the served numbers carried that error into bids, and a logit one float32
step apart (a row scored alone or at the end of an odd-sized batch) moved a score by a whole step. Written
as ``Reciprocal(1 + Exp(-x))`` every output is within ~2 float32 steps of the true sigmoid of its logit:
Exp is exact to float32's relative precision, and 1 + e and its reciprocal add a rounding each. For
x < -88, exp(-x) overflows to inf and the answer is 0, as the true value (< 1e-38) rounds to; for x > 17
the answer is 1, the true value rounded to float32.

Applied to every graph an export writes (``training/export.py``), before its parity check; a version
exported before keeps its Sigmoid nodes and is served as it is.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

ONE = "precise_sigmoid/one"  # the graph's float32 constant 1


def precise_sigmoids(model: onnx.ModelProto) -> int:
    """Rewrite each float32 ``Sigmoid`` node of ``model``'s main graph in place as 1 / (1 + exp(-x)), keeping
    its output's name; returns how many were rewritten. One of another type (double, float16), or whose
    type shape inference cannot tell, is left as it is (the constant 1 is float32)."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *inferred.input, *inferred.output]}
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        sigmoid = node.op_type == "Sigmoid" and node.domain in ("", "ai.onnx")
        if not sigmoid or types.get(node.input[0]) != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        (x,), (y,) = node.input, node.output
        step = f"{node.name or y}/precise"
        nodes += [
            helper.make_node("Neg", [x], [f"{step}/neg"], name=f"{step}/Neg"),
            helper.make_node("Exp", [f"{step}/neg"], [f"{step}/exp"], name=f"{step}/Exp"),
            helper.make_node("Add", [f"{step}/exp", ONE], [f"{step}/denominator"], name=f"{step}/Add"),
            helper.make_node("Reciprocal", [f"{step}/denominator"], [y], name=f"{step}/Reciprocal"),
        ]
        rewritten += 1
    if rewritten:
        graph.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), ONE))
        del graph.node[:]
        graph.node.extend(nodes)
    return rewritten
