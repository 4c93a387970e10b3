"""A gRPC call's request id and access line (service/v2/grpc/access.py), as an HTTP request has them: an SRE
audit explaining one failed bid found no line for any gRPC call (OK, unknown model, unknown input, 1,200 rows,
deadline), empty initial and trailing metadata, and only ``ctr_grpc_responses_total{code}`` counting them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import grpc
import httpx
import orjson
from tritonclient.grpc import service_pb2, service_pb2_grpc

from clients.service_process import free_port
from tests.support.access_log import given_id
from tests.support.encoded_candidates import infer_request
from tests.support.metrics import pending
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.tiny_repository import repository
from tests.support.wait import eventually

GRPC_ACCESS = " service.grpc.access: "  # a text line's logger, before its message


def called(method: grpc.UnaryUnaryMultiCallable, request: object, *ids: str) -> tuple[grpc.StatusCode, str, str]:
    """(code, details, the x-request-id of the trailing metadata) of a call carrying ``ids``."""
    try:
        _, call = method.with_call(request, metadata=[("x-request-id", i) for i in ids], timeout=10)
        code, details, trailing = grpc.StatusCode.OK, "", call.trailing_metadata()
    except grpc.RpcError as error:
        code, details, trailing = error.code(), error.details(), error.trailing_metadata()
    said = [value for key, value in trailing or () if key == "x-request-id"]
    assert len(said) == 1, trailing
    return code, details, said[0]


def text_lines(log: Path) -> dict[str, str]:
    """Each gRPC access line's message by its request id."""
    lines = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        if GRPC_ACCESS in line:
            message = line.split(GRPC_ACCESS, 1)[1]
            request_id = message.rsplit(" request_id=", 1)[1]
            assert request_id not in lines, f"two lines for {request_id}"
            lines[request_id] = message
    return lines


def test_each_grpc_call_has_a_request_id_and_one_access_line(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    port = free_port()
    log = tmp_path / "log"
    with (
        running_server(tmp_path / "models", log, ctr_model="esmm", grpc_port=str(port)),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        answers = {
            "ok": called(stub.ModelInfer, infer_request(), "grpc-md-1"),
            "no-model": called(stub.ModelInfer, infer_request("nope"), "grpc-md-2"),
            "no-input": called(stub.ModelInfer, infer_request(input_name="bogus"), "grpc-md-3"),
            "rows": called(stub.ModelInfer, infer_request(rows=1200), "grpc-md-4"),
            "live": called(stub.ServerLive, service_pb2.ServerLiveRequest(), "grpc-md-5"),
            "spaces": called(stub.ServerLive, service_pb2.ServerLiveRequest(), "has spaces status=999"),
            "two": called(stub.ServerLive, service_pb2.ServerLiveRequest(), "one-1", "one-2"),
            "none": called(stub.ServerLive, service_pb2.ServerLiveRequest()),
            "infer-id": called(stub.ModelInfer, with_id(infer_request(), "bid-7"), "grpc-md-6"),
        }

        def every_line() -> dict[str, str] | None:
            found = text_lines(log)
            return found if len(found) == len(answers) else None

        lines = eventually(every_line, 5, "a line for each call")
    assert [answers[k][2] for k in ("ok", "no-model", "no-input", "rows", "live")] == [
        f"grpc-md-{i}" for i in range(1, 6)
    ]
    assert all(given_id(answers[k][2]) for k in ("spaces", "two", "none")), answers  # replaced, not refused
    assert len({answers[k][2] for k in ("spaces", "two", "none")}) == 3
    assert [answers[k][0] for k in ("ok", "no-model", "no-input", "rows", "spaces", "two")] == [
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OK,
        grpc.StatusCode.OK,
    ]
    duration = r"duration_ms=\d+(\.\d+)?"
    assert re.fullmatch(
        rf'127\.0\.0\.1:\d+ - gRPC ModelInfer model="esmm" OK {duration} request_id=grpc-md-1', lines["grpc-md-1"]
    )
    for key in ("no-model", "no-input", "rows"):
        code, details, request_id = answers[key]
        message = lines[request_id]
        assert f" {code.name} duration_ms=" in message and message.startswith("127.0.0.1:"), message
        assert message.endswith(f" error={orjson.dumps(details).decode()} request_id={request_id}"), message
    assert 'gRPC ModelInfer model="nope" NOT_FOUND' in lines["grpc-md-2"]
    assert re.fullmatch(rf"127\.0\.0\.1:\d+ - gRPC ServerLive OK {duration} request_id=grpc-md-5", lines["grpc-md-5"])
    assert lines.keys() == {answer[2] for answer in answers.values()}
    # the id the caller sent and the service did not take is on the line, as an HTTP request's, and so is a
    # ModelInfer's own id (infer_id, as a V2 infer body's)
    assert lines[answers["spaces"][2]].endswith(
        f' refused_request_id="has spaces status=999" request_id={answers["spaces"][2]}'
    )
    assert lines[answers["two"][2]].endswith(f' refused_request_id="one-1, one-2" request_id={answers["two"][2]}')
    assert lines["grpc-md-6"].endswith(' infer_id="bid-7" request_id=grpc-md-6'), lines["grpc-md-6"]


def with_id(request: service_pb2.ModelInferRequest, infer_id: str) -> service_pb2.ModelInferRequest:
    request.id = infer_id
    return request


def slow_batches(tmp_path: Path, versions: int = 1) -> tuple[int, Path]:
    """A repository whose esmm batches wait just under 0.6 s to fill (as long a wait is refused at load): a call,
    queued a few µs after its 0.6 s deadline began, waits it out in the queue; ``versions`` of esmm served, each
    with a batcher of its own; and the gRPC port and log file for its server."""
    repository(tmp_path / "models", "max_batch_size = 1024\nmax_queue_delay_us = 599999", versions)
    return free_port(), tmp_path / "log"


def test_a_call_past_its_deadline_or_cancelled_gets_its_line_once_in_json(tmp_path: Path) -> None:
    """Batches that wait just under 0.6 s to fill: a call waits out the service's 0.6 s deadline in the queue
    (its message says so), and one its client cancels while it is queued gets a CANCELLED line, once.

    The cancelled call goes to the model's other version, a batcher of its own where it is the first call (so
    company is expected and it waits the whole 0.6 s), and is cancelled once /metrics shows it there. Sent after
    the late call to that call's batcher, it rode that call's fill wait, which ends as long after the late call's
    deadline as the service took between reading the deadline and queueing the call: on a busy machine a few ms,
    time enough for the next call to be queued, batched at the wait's end and answered OK before its cancel."""
    port, log = slow_batches(tmp_path, versions=2)
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "request_timeout_ms": "600", "log_format": "json"}
    with (
        running_server(tmp_path / "models", log, **settings) as (url, _),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        httpx.Client(base_url=url, timeout=5) as http,  # once: a client per poll loads its CA bundle each time
    ):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        late_request, gone_request = infer_request(version="1"), infer_request(version="2")
        code, details, _ = called(stub.ModelInfer, late_request, "late-1")
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert re.fullmatch(r"deadline exceeded in model esmm:1's queue, \d+\.\d ms after it was queued", details)
        cancelled = stub.ModelInfer.future(gone_request, metadata=[("x-request-id", "gone-1")], timeout=10)
        eventually(lambda: pending(http, 2) == 1, 5, "the call to cancel queued", every_s=0.01)
        cancelled.cancel()  # waiting for its batch to fill, which it does not for 0.6 s

        def json_lines() -> dict[str, dict] | None:
            records = [orjson.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line[:1] == "{"]
            found = {r["request_id"]: r for r in records if r["logger"] == "service.grpc.access"}
            return found if len(found) == 2 else None

        lines = eventually(json_lines, 5, "the two calls' lines")
        time.sleep(0.7)  # past the cancelled call's own deadline: still one line
        assert json_lines() == lines
    late, gone = lines["late-1"], lines["gone-1"]
    assert (late["method"], late["model"], late["code"], late["error"]) == ("ModelInfer", "esmm", code.name, details)
    assert late["duration_ms"] >= 600 and re.fullmatch(r"127\.0\.0\.1:\d+", late["client"])
    assert late["message"].endswith(f" error={orjson.dumps(details).decode()} request_id=late-1")
    assert (gone["code"], gone["error"]) == ("CANCELLED", "the client cancelled the call before it was answered")
    # at the level of the HTTP answer each maps from: a 504 is a failure's WARNING, a 499 the client's INFO
    assert (late["level"], gone["level"]) == ("WARNING", "INFO")
    assert gone["duration_ms"] < 600  # at its cancel, before the batch it waited for or its deadline


def test_without_the_access_log_a_call_still_gets_its_request_id_and_only_a_failure_a_line(tmp_path: Path) -> None:
    """With ``CTR_ACCESS_LOG=false`` a call that succeeds or is refused for its request (NOT_FOUND) has no line, and
    one the service failed (DEADLINE_EXCEEDED: batches that wait just under a 0.6 s deadline to fill) has its line, as
    an HTTP request's failure has (http/failure_lines.py): gRPC's failures had none."""
    port, log = slow_batches(tmp_path)
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "access_log": "false", "request_timeout_ms": "600"}
    with running_server(tmp_path / "models", log, **settings), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        live = called(stub.ServerLive, service_pb2.ServerLiveRequest(), "quiet-1")
        assert live == (grpc.StatusCode.OK, "", "quiet-1")
        assert called(stub.ModelInfer, infer_request("nope"), "quiet-2")[1:] == (
            "model 'nope' is not served",
            "quiet-2",
        )
        assert called(stub.ModelInfer, infer_request(), "late-2")[0] == grpc.StatusCode.DEADLINE_EXCEEDED
        lines = eventually(lambda: text_lines(log) or None, 5, "the failure's line")
    assert list(lines) == ["late-2"] and 'gRPC ModelInfer model="esmm" DEADLINE_EXCEEDED' in lines["late-2"]


def test_a_message_that_does_not_decode_is_invalid_argument_with_its_id_its_line_and_its_count(tmp_path: Path) -> None:
    """Bytes that are no protobuf message: grpc's own deserializer answered ``UNKNOWN "Unexpected <class
    'google.protobuf.message.DecodeError'>"`` and logged a 6-line traceback, with no id, line or count; now the
    method's wrapper decodes them (answers.py) and a malformed message is bad input, as any other."""
    publish_tiny_esmm(tmp_path / "models")
    port = free_port()
    log = tmp_path / "log"
    with (
        running_server(tmp_path / "models", log, ctr_model="esmm", grpc_port=str(port)) as (url, _),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        answers = {  # no serializer: the bytes go as they are
            request_id: called(channel.unary_unary(path), b"\xff\xff\xff", request_id)
            for request_id, path in (
                ("garbage-1", "/inference.GRPCInferenceService/ModelInfer"),
                ("garbage-2", "/grpc.health.v1.Health/Check"),
            )
        }
        lines = eventually(lambda: text_lines(log) if len(text_lines(log)) == 2 else None, 5, "the calls' lines")
        counted = httpx.get(f"{url}/metrics", timeout=5).text
    for request_id, message in (
        ("garbage-1", "inference.ModelInferRequest"),
        ("garbage-2", "grpc.health.v1.HealthCheckRequest"),
    ):
        details = f"the request message does not decode as {message} (malformed protobuf)"
        assert answers[request_id] == (grpc.StatusCode.INVALID_ARGUMENT, details, request_id)
        assert " INVALID_ARGUMENT duration_ms=" in lines[request_id], lines
        assert lines[request_id].endswith(f" error={orjson.dumps(details).decode()} request_id={request_id}")
    assert 'ctr_grpc_responses_total{code="INVALID_ARGUMENT"} 2' in counted
    assert "Traceback" not in log.read_text(encoding="utf-8")
