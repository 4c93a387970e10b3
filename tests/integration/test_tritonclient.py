"""The Open Inference Protocol as the standard clients speak it: tritonclient over HTTP (JSON and binary
tensors) and gRPC, unchanged (no extra headers), against the real service on loopback.

The same rows through ``/v1/score`` (features by name) and through V2 infer (the encoded tensors) give
identical pctr and pcvr: the service passes those model outputs through as they are. (Its pctcvr is
pctr * pcvr in float64, the model's own pctcvr output the same product in float32.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc as grpc_module
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from clients.service_process import free_port
from tests.support.encoded_candidates import CANDIDATES, CONTEXT, encoded, grpc_inputs, http_inputs
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually


@dataclass(frozen=True)
class Service:
    url: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT
    log: Path

    @property
    def http(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    port = free_port()
    with running_server(repository, log, ctr_model="esmm", grpc_port=str(port)) as (url, process):
        yield Service(url, f"127.0.0.1:{port}", log)
        maps = Path(f"/proc/{process.pid}/maps")
        assert not maps.exists() or "torch" not in maps.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def scored(service: Service) -> dict[str, np.ndarray]:
    """/v1/score's answers for CANDIDATES, by output name."""
    response = httpx.post(f"{service.url}/v1/score", json={"context": CONTEXT, "candidates": CANDIDATES}, timeout=10)
    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    return {name: np.array([s[name] for s in scores]) for name in ("pctr", "pcvr", "pctcvr")}


def check_outputs(result: object, scored: dict[str, np.ndarray]) -> None:
    for name in ("pctr", "pcvr"):
        value = result.as_numpy(name)  # type: ignore[attr-defined]
        assert value.dtype == np.float32 and value.shape == (len(CANDIDATES),)
        np.testing.assert_array_equal(value.astype(np.float64), scored[name])
    np.testing.assert_allclose(result.as_numpy("pctcvr"), scored["pctcvr"], rtol=1e-6)  # type: ignore[attr-defined]


def test_http_health_metadata_and_config(service: Service) -> None:
    client = httpclient.InferenceServerClient(service.http)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("esmm") and client.is_model_ready("esmm", "1")
    assert not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("esmm")
    assert {t["name"]: (t["datatype"], t["shape"]) for t in metadata["inputs"]} == {
        "categorical": ("INT64", [-1, 3]),
        "numeric": ("FP32", [-1, 2]),
    }
    for config in (client.get_model_config("esmm"), client.get_model_config("esmm", "1")):
        # max_batch_size: the most rows a request may carry (CTR_MAX_CANDIDATES 1000, under the batcher's 1024)
        assert (config["name"], config["platform"], config["max_batch_size"]) == ("esmm", "onnxruntime_onnx", 1000)
        assert {t["name"]: (t["data_type"], t["dims"]) for t in config["input"]} == {
            "categorical": ("TYPE_INT64", [3]),
            "numeric": ("TYPE_FP32", [2]),
        }
        assert {t["name"]: t["data_type"] for t in config["output"]} == dict.fromkeys(
            ("pctr", "pcvr", "pctcvr"), "TYPE_FP32"
        )
        assert config["dynamic_batching"] == {"max_queue_delay_microseconds": 500}
        assert config["instance_group"] == [{"name": "esmm", "kind": "KIND_CPU", "count": 1}]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_http_infer_matches_v1_score(service: Service, scored: dict[str, np.ndarray], binary: bool) -> None:
    client = httpclient.InferenceServerClient(service.http)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in ("pctr", "pcvr", "pctcvr")]
    result = client.infer("esmm", http_inputs(binary, *encoded()), outputs=outputs, request_id="r7")
    check_outputs(result, scored)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("esmm", "1", "r7")
    assert all(("data" in o) != binary for o in response["outputs"])


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_http_infer_with_a_compressed_request(
    service: Service, scored: dict[str, np.ndarray], algorithm: str, binary: bool
) -> None:
    """tritonclient's ``request_compression_algorithm`` compresses the body (Content-Encoding) as Triton
    reads it; it was answered 415."""
    client = httpclient.InferenceServerClient(service.http)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in ("pctr", "pcvr", "pctcvr")]
    result = client.infer(
        "esmm", http_inputs(binary, *encoded()), outputs=outputs, request_compression_algorithm=algorithm
    )
    check_outputs(result, scored)


def test_http_binary_inputs_with_every_output_binary_by_default(
    service: Service, scored: dict[str, np.ndarray]
) -> None:
    """No outputs named: the client asks for every output in binary (``binary_data_output``)."""
    client = httpclient.InferenceServerClient(service.http)
    result = client.infer("esmm", http_inputs(True, *encoded()), model_version="1")
    check_outputs(result, scored)
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])


def test_grpc_health_metadata_config_and_infer(service: Service, scored: dict[str, np.ndarray]) -> None:
    client = grpcclient.InferenceServerClient(service.grpc)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("esmm") and not client.is_model_ready("nope")
    assert not client.is_model_ready("esmm", "7")
    # a version that is no integer is INVALID_ARGUMENT, as Triton answers it (it was NOT_FOUND, or not ready)
    refusal = "version must be a positive integer of at most 18 digits, no leading zero, not 'abc'"
    for call in (lambda: client.is_model_ready("esmm", "abc"), lambda: client.get_model_metadata("esmm", "abc")):
        with pytest.raises(InferenceServerException, match=refusal) as raised:
            call()
        assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "statistics" in client.get_server_metadata(as_json=True)["extensions"]
    metadata = client.get_model_metadata("esmm", as_json=True)
    assert metadata["versions"] == ["1"] and [t["name"] for t in metadata["inputs"]] == ["categorical", "numeric"]
    config = client.get_model_config("esmm", as_json=True)["config"]
    assert config["max_batch_size"] == 1000 and config["input"][0]["data_type"] == "TYPE_INT64"
    outputs = [grpcclient.InferRequestedOutput(name) for name in ("pctr", "pcvr", "pctcvr")]
    result = client.infer("esmm", grpc_inputs(*encoded()), outputs=outputs, request_id="g1", client_timeout=10)
    check_outputs(result, scored)
    assert result.get_response().id == "g1"
    check_outputs(client.infer("esmm", grpc_inputs(*encoded()), model_version="1"), scored)  # every output


def test_statistics_count_every_transport(service: Service) -> None:
    before = httpclient.InferenceServerClient(service.http).get_inference_statistics("esmm")["model_stats"][0]
    http = httpclient.InferenceServerClient(service.http)
    http.infer("esmm", http_inputs(True, *encoded()))
    grpcclient.InferenceServerClient(service.grpc).infer("esmm", grpc_inputs(*encoded()))
    (after,) = http.get_inference_statistics("esmm")["model_stats"]
    assert (after["name"], after["version"]) == ("esmm", "1")
    assert after["inference_count"] - before["inference_count"] == 2 * len(CANDIDATES)
    assert after["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"] == 2
    assert after["execution_count"] > before["execution_count"] and after["last_inference"] > 0
    # >=: the batcher times on the event loop's clock, in whole milliseconds under uvloop
    assert after["inference_stats"]["compute_infer"]["ns"] >= before["inference_stats"]["compute_infer"]["ns"]
    assert sum(b["compute_infer"]["count"] for b in after["batch_stats"]) == after["execution_count"]
    grpc_stats = grpcclient.InferenceServerClient(service.grpc).get_inference_statistics("esmm", as_json=True)
    (entry,) = grpc_stats["model_stats"]
    assert int(entry["inference_count"]) >= after["inference_count"]
    everything = http.get_inference_statistics()["model_stats"]
    assert [(m["name"], m["version"]) for m in everything] == [("esmm", "1")]


def test_errors_reach_the_client_with_the_services_message(service: Service) -> None:
    categorical, numeric = encoded()
    narrow = categorical[:, :2].copy()
    http = httpclient.InferenceServerClient(service.http)
    grpc = grpcclient.InferenceServerClient(service.grpc)
    wrong_shape = "categorical must have 3 columns, not 2"
    unknown = re.escape("model 'nope' is not served")
    calls = [  # (call, the service's message, the status the client reports)
        (lambda: http.infer("esmm", http_inputs(False, narrow, numeric)), wrong_shape, "400"),
        (lambda: http.infer("esmm", http_inputs(True, narrow, numeric)), wrong_shape, "400"),
        (lambda: grpc.infer("esmm", grpc_inputs(narrow, numeric)), wrong_shape, "StatusCode.INVALID_ARGUMENT"),
        (lambda: http.infer("nope", http_inputs(True, categorical, numeric)), unknown, "404"),
        (lambda: grpc.infer("nope", grpc_inputs(categorical, numeric)), unknown, "StatusCode.NOT_FOUND"),
        (lambda: grpc.get_model_metadata("nope"), unknown, "StatusCode.NOT_FOUND"),
        (lambda: http.get_model_config("nope"), unknown, "404"),
    ]
    for call, message, status in calls:
        with pytest.raises(InferenceServerException, match=message) as refused:
            call()
        assert refused.value.status() == status


def test_what_the_service_does_not_do_is_refused_naming_it(service: Service) -> None:
    """Triton's classification extension (an answer of class strings) and a typed-contents field that
    does not match the datatype are refused, not answered otherwise; a tensor's refusal names its input
    (the clients show the message alone); gRPC does not advertise the repository extension it lacks."""
    categorical, numeric = encoded()
    http = httpclient.InferenceServerClient(service.http)
    grpc = grpcclient.InferenceServerClient(service.grpc)
    classified = "the classification extension is not supported"
    for call, status in (
        (lambda: http.infer("esmm", http_inputs(True, categorical, numeric), outputs=[
            httpclient.InferRequestedOutput("pctr", class_count=1)]), "400"),
        (lambda: grpc.infer("esmm", grpc_inputs(categorical, numeric), outputs=[
            grpcclient.InferRequestedOutput("pctr", class_count=1)]), "StatusCode.INVALID_ARGUMENT"),
    ):  # fmt: skip
        with pytest.raises(InferenceServerException, match=classified) as refused:
            call()
        assert refused.value.status() == status
    as_fp32 = http_inputs(False, categorical, numeric)
    as_fp32[0] = httpclient.InferInput("categorical", list(categorical.shape), "FP32")
    as_fp32[0].set_data_from_numpy(categorical.astype(np.float32), binary_data=False)
    with pytest.raises(InferenceServerException, match="input 'categorical': datatype must be INT64, not 'FP32'"):
        http.infer("esmm", as_fp32)
    typed = service_pb2.ModelInferRequest(model_name="esmm")  # both inputs as typed lists, as a hand-built one
    first = typed.inputs.add(name="categorical", datatype="INT64", shape=list(categorical.shape))
    first.contents.int_contents.extend(int(x) for x in categorical.ravel())  # the INT32 field, not int64_contents
    second = typed.inputs.add(name="numeric", datatype="FP32", shape=list(numeric.shape))
    second.contents.fp32_contents.extend(float(x) for x in numeric.ravel())
    with pytest.raises(grpc_module.RpcError) as wrong_field:
        grpc._client_stub.ModelInfer(typed)
    assert wrong_field.value.code() == grpc_module.StatusCode.INVALID_ARGUMENT
    assert "input 'categorical': INT64 values go in contents.int64_contents" in wrong_field.value.details()
    assert "model_repository" not in grpc.get_server_metadata(as_json=True)["extensions"]


def test_grpc_deadline_shorter_than_the_queue_is_deadline_exceeded(tmp_path: Path) -> None:
    """Batches that wait just under the service's own 0.6 s deadline to fill (as long a wait is refused at
    load; the call is queued a few µs after its deadline began, so it is past it when the batch forms): a
    client allowing 0.3 s gets DEADLINE_EXCEEDED at once (not at the end of the queue's wait), and so does
    one allowing 10 s from the service's deadline, with its message; both are dropped from the queue, and
    the service goes on answering."""
    publish_tiny_esmm(tmp_path / "models")
    (tmp_path / "models" / "esmm" / "config.toml").write_text(
        'kind = "esmm"\n[serving]\nmax_batch_size = 1024\nmax_queue_delay_us = 599999\n'
    )
    port = free_port()
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "request_timeout_ms": "600"}
    with running_server(tmp_path / "models", tmp_path / "log", **settings) as (url, _):
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        for client_timeout, message in (
            (0.3, None),
            (10, r"deadline exceeded in model esmm:1's queue, \d+\.\d ms after"),
        ):
            started = time.monotonic()
            with pytest.raises(InferenceServerException, match=message) as refused:
                client.infer("esmm", grpc_inputs(*encoded()), client_timeout=client_timeout)
            waited = time.monotonic() - started
            assert refused.value.status() == "StatusCode.DEADLINE_EXCEEDED"
            assert waited < min(client_timeout, 0.6) + 0.2, f"answered after {waited:.2f} s: not at the deadline"
            time.sleep(0.6)  # the abandoned call leaves the queue at its fill wait; the next one's starts afresh
        idle = 'ctr_inference_pending_request_count{model="esmm",version="1"} 0'

        def settled() -> str:  # the server settles the first request at its deadline, right after the client's
            metrics = httpx.get(f"{url}/metrics").text
            return metrics if idle in metrics else ""

        metrics = eventually(settled, 5, "a request still pending")
        failures = re.findall(r'failure_total\{model="esmm",version="1",reason="(\w+)"\} (\d+)', metrics)
        assert sum(int(n) for reason, n in failures if reason in ("deadline", "cancelled")) == 2, failures
        assert client.is_server_ready()
