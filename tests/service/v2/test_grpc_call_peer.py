"""A gRPC call's access line names its peer as read when the call started (service/v2/grpc/access.py
``call_scope``): grpc says "" once it has ended a call whose deadline passed, and the line of such a call, written
after, began `` - gRPC ModelInfer ... DEADLINE_EXCEEDED`` (an audit's calls with a 0.5 ms timeout)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from types import SimpleNamespace

import grpc
import pytest

from service.http.errors import ApiError
from service.v2.grpc import messages as pb
from service.v2.grpc.access import ACCESS_LOGGER
from service.v2.grpc.answers import answered


class EndingContext:
    """A call's context whose peer grpc forgets once the method has run (its deadline passed meanwhile)."""

    def __init__(self) -> None:
        self.ended = False

    def invocation_metadata(self) -> tuple:
        return (("x-request-id", "late-1"),)

    def peer(self) -> str:
        return "" if self.ended else "ipv4:127.0.0.1:39404"

    def time_remaining(self) -> float:
        return -0.001

    async def abort(self, code: grpc.StatusCode, details: str, trailing: tuple) -> None:
        raise grpc.aio.AbortError()


class Service:
    app = SimpleNamespace(
        state=SimpleNamespace(
            metrics=SimpleNamespace(grpc_responses=Counter()), failure_lines=SimpleNamespace(writes=lambda status: True)
        )
    )

    def __init__(self, context: EndingContext) -> None:
        self.context = context

    @answered(pb.ModelInferRequest)
    async def ModelInfer(self, request: pb.ModelInferRequest, context: EndingContext) -> pb.ModelInferResponse:
        context.ended = True
        raise ApiError(504, "deadline exceeded before model esmm:1's queue")


def test_the_line_of_a_call_that_ended_meanwhile_names_its_peer(caplog: pytest.LogCaptureFixture) -> None:
    context = EndingContext()
    service = Service(context)
    request = pb.ModelInferRequest(model_name="esmm").SerializeToString()
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), pytest.raises(grpc.aio.AbortError):
        asyncio.run(service.ModelInfer(request, context))
    [record] = [record for record in caplog.records if record.name == ACCESS_LOGGER]
    assert record.client == "127.0.0.1:39404"  # type: ignore[attr-defined]
    assert record.getMessage().startswith('127.0.0.1:39404 - gRPC ModelInfer model="esmm" DEADLINE_EXCEEDED')
