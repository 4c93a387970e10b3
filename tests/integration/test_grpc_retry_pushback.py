"""An overloaded model's UNAVAILABLE carries ``grpc-retry-pushback-ms`` (gRFC A6), as HTTP's 503 carries Retry-After
(``CTR_RETRY_AFTER_S``): an ad server's retry policy had only x-request-id in the trailers, so nothing told it when
to retry. A 503 without Retry-After (a model not loaded) gets no such hint."""

from __future__ import annotations

from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2_grpc

from clients.service_process import free_port
from service.http.errors import ModelUnavailable
from service.v2.grpc.answers import retry_pushback
from tests.support.encoded_candidates import infer_request
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm


def outcome(call: grpc.Future) -> tuple[grpc.StatusCode, dict[str, str]]:
    """A call's code and trailing metadata, answered or refused."""
    call.exception()  # waits for it
    return call.code(), dict(call.trailing_metadata() or ())


def test_a_full_queue_tells_when_to_retry(tmp_path: Path) -> None:
    """Batches of 10 rows that wait up to 0.5 s to fill, in a queue of 10: one 6-row call waits there, and the other
    cannot join it (6 + 6 > 10), however fast the machine runs the model."""
    publish_tiny_esmm(tmp_path / "models")
    (tmp_path / "models" / "esmm" / "config.toml").write_text(
        'kind = "esmm"\n[serving]\nmax_batch_size = 10\nmax_queue_items = 10\nmax_queue_delay_us = 500000\n',
        encoding="utf-8",
    )
    port = free_port()
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "retry_after_s": "3", "access_log": "false"}
    with (
        running_server(tmp_path / "models", tmp_path / "log", **settings),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        calls = [stub.ModelInfer.future(infer_request(rows=6), timeout=10) for _ in range(2)]
        outcomes = sorted((outcome(call) for call in calls), key=lambda o: o[0].value)
    (ok, ok_trailing), (refused, refused_trailing) = outcomes
    assert (ok, refused) == (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE), outcomes
    assert refused_trailing["grpc-retry-pushback-ms"] == "3000", outcomes
    assert "grpc-retry-pushback-ms" not in ok_trailing


def test_a_model_not_loaded_gets_no_retry_hint() -> None:
    assert retry_pushback(ModelUnavailable("model 'esmm' is not loaded")) == ()
