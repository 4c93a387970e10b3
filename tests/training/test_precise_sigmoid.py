"""The Sigmoid rewrite of every export (training/precise_sigmoid.py): the same function, to float32's
relative precision over the whole float32 range of a logit, its output names kept."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from training.precise_sigmoid import precise_sigmoids


def sigmoid_graph(element: int = onnx.TensorProto.FLOAT) -> onnx.ModelProto:
    """y = Sigmoid(x), z = Relu(x): a Sigmoid beside another node."""
    x = helper.make_tensor_value_info("x", element, ["n"])
    outputs = [helper.make_tensor_value_info(n, element, ["n"]) for n in ("y", "z")]
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"], name="s"), helper.make_node("Relu", ["x"], ["z"], name="r")]
    graph = helper.make_graph(nodes, "g", [x], outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_every_output_is_within_float32_s_relative_precision_of_the_true_sigmoid():
    model = sigmoid_graph()
    assert precise_sigmoids(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Neg", "Exp", "Add", "Reciprocal", "Relu"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["y", "z"]
    x = np.concatenate([np.linspace(-87, 20, 200_001), [-1e-30, 0.0, 1e-30]]).astype(np.float32)
    y, z = session.run(None, {"x": x})
    true = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert np.max(np.abs(y - true) / true) < 2.5e-7  # ~2 float32 steps
    assert np.array_equal(z, np.maximum(x, 0))
    extreme = np.array([-1e30, -200, -89, 40, 1e30, np.inf, -np.inf], np.float32)
    y, _ = session.run(None, {"x": extreme})
    assert y.tolist() == [0.0, 0.0, y[2], 1.0, 1.0, 1.0, 0.0] and 0.0 <= y[2] < 1e-38


def test_a_graph_without_a_sigmoid_is_left_as_it_is():
    model = sigmoid_graph()
    del model.graph.node[0]
    before = model.SerializeToString()
    assert precise_sigmoids(model) == 0 and model.SerializeToString() == before


def test_a_sigmoid_of_another_type_than_float32_is_left_as_it_is():
    """The constant 1 is float32: a double Sigmoid rewritten was a graph ONNX Runtime refused (Add of a
    double and a float)."""
    model = sigmoid_graph(onnx.TensorProto.DOUBLE)
    before = model.SerializeToString()
    assert precise_sigmoids(model) == 0 and model.SerializeToString() == before
