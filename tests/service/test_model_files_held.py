"""A version serves only the files its model.json vouches for: an ONNX graph with a tensor whose data lies in
another file (ONNX's external data, read by ONNX Runtime and covered by no sha256) is refused, wherever the
tensor sits (an initializer, a Constant's value, a subgraph's); so is a model.onnx too large to be one,
before it is read. A security audit served a version whose pcvr was a tensor read from ``.env`` in the
service's working directory, its model.json's sha256 right; and a sparse 3 GB model.onnx took the process
to 3.3 GB of memory to be refused on its checksum."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from common.repository import MANIFEST_FILE, MODEL_FILE, version_dir
from service.models.external_data import UnreadableModel, external_tensors
from service.models.loader import ONNX_MAX_BYTES
from tests.support.app_client import AUTH, BODY, app_client, make_repository

SECRET = b"CTR_ADMIN_TOKEN=0123456789abcdef0123\nDB_PASSWORD=hunter2-very-secret\n"


def external(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
    """``tensor`` with its data moved out to ``location`` (as onnx's save_as_external_data writes it)."""
    moved = onnx.TensorProto()
    moved.CopyFrom(tensor)
    moved.ClearField("raw_data")
    moved.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(tensor.raw_data)))):
        entry = moved.external_data.add()
        entry.key, entry.value = key, value
    return moved


def republish(root: Path, version: int, graph_bytes: bytes) -> None:
    """``graph_bytes`` as ``version``'s model.onnx, its model.json's sha256 made to match."""
    directory = version_dir(root, "esmm", version)
    (directory / MODEL_FILE).write_bytes(graph_bytes)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["onnx_sha256"] = hashlib.sha256(graph_bytes).hexdigest()
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def leaking(root: Path, version: int, location: str, floats: int) -> bytes:
    """The tiny model of ``version`` whose ``pcvr`` is, row by row, the floats of the file at ``location``
    (the audit's graph: an external tensor gathered at run-time indices, so nothing folds it away)."""
    graph = onnx.load_from_string((version_dir(root, "esmm", version) / MODEL_FILE).read_bytes())
    for node in graph.graph.node:
        node.output[:] = ["pcvr_as_trained" if output == "pcvr" else output for output in node.output]
    leak = numpy_helper.from_array(np.zeros(floats, np.float32), "leak")
    index = {"first": [0], "second": [1], "axis": 0, "last": floats - 1, "one": 1}
    graph.graph.initializer.extend(
        [external(leak, location)] + [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in index.items()]
    )
    graph.graph.node.extend(
        [
            helper.make_node("Shape", ["numeric"], ["shape"]),
            helper.make_node("Slice", ["shape", "first", "second"], ["rows"]),
            helper.make_node(
                "ConstantOfShape", ["rows"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.int64))
            ),
            helper.make_node("CumSum", ["ones", "axis"], ["counted"]),
            helper.make_node("Sub", ["counted", "one"], ["from_0"]),
            helper.make_node("Min", ["from_0", "last"], ["row"]),
            helper.make_node("Gather", ["leak", "row"], ["pcvr"], axis=0),
        ]
    )
    return graph.SerializeToString()


def test_the_walk_finds_external_tensors_wherever_a_graph_holds_them() -> None:
    weights = numpy_helper.from_array(np.ones((2, 2), np.float32), "weights")
    constant = helper.make_node("Constant", [], ["c"], value=external(weights, "constant.bin"))
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w_branch"], ["y"])],
        "branch",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])],
        [external(numpy_helper.from_array(np.ones((2, 2), np.float32), "w_branch"), "../../etc/passwd")],
    )
    choose = helper.make_node("If", ["flag"], ["z"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [constant, choose],
        "g",
        [helper.make_tensor_value_info("flag", onnx.TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [2, 2])],
        [external(weights, "/etc/shadow")],
    )
    found = external_tensors(helper.make_model(graph).SerializeToString())
    assert sorted(found) == sorted(
        [
            ("weights", "/etc/shadow"),  # an initializer's
            ("weights", "constant.bin"),  # a Constant's value
            ("w_branch", "../../etc/passwd"),  # then_branch's initializer
            ("w_branch", "../../etc/passwd"),  # else_branch's
        ]
    )
    plain = helper.make_graph([], "g", [], [], [weights])
    assert external_tensors(helper.make_model(plain).SerializeToString()) == []
    model = helper.make_model(graph).SerializeToString()
    with pytest.raises(UnreadableModel):
        external_tensors(model[: len(model) // 2])  # cut inside a field: what the walk did not see is not vouched for


def test_a_version_reading_a_file_beside_it_is_refused_and_the_one_before_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repository(tmp_path / "models", 2)
    monkeypatch.chdir(tmp_path)  # where ONNX Runtime resolves a relative location when loading from bytes
    (tmp_path / ".env").write_bytes(SECRET.ljust(64, b"\0"))
    republish(root, 2, leaking(root, 2, ".env", 16))
    with app_client(root) as client:
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 1
        index = {entry["version"]: entry for entry in client.post("/v2/repository/index", headers=AUTH).json()}
        assert index["2"]["state"] == "UNAVAILABLE", index
        assert index["2"]["reason"].startswith(
            "model.onnx keeps 1 tensor(s) in other files ('leak' in '.env'): a served model holds all its data"
        ), index["2"]["reason"]


def test_a_model_onnx_too_large_to_be_one_is_refused_before_it_is_read(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "models", 2)
    model = version_dir(root, "esmm", 2) / MODEL_FILE
    with model.open("r+b") as file:
        os.truncate(file.fileno(), ONNX_MAX_BYTES + 1)  # sparse: no disk taken
    with app_client(root) as client:
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 1
        index = {entry["version"]: entry for entry in client.post("/v2/repository/index", headers=AUTH).json()}
        assert index["2"]["reason"] == (
            f"model.onnx has {ONNX_MAX_BYTES + 1:,} bytes: an ONNX model holding all its data has at most "
            f"{ONNX_MAX_BYTES:,} (protobuf's limit)"
        ), index["2"]
