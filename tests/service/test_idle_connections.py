"""An idle connection is closed without a word, never under a request that has reached the host.

The protocol ``ctr serve`` runs (service/http/protocol.py), on a real uvicorn server on a loopback port.
A request whose bytes reach the host as its connection's idle time runs out used to be lost: the sweep
closed the connection before the busy loop had read them (or, on a fresh connection, answered 408 to a
request it never read). The race is made certain here: on the server's loop, the client sends its
request and the bytes wait in the kernel, unread, while the connection's time-out is called, as the
sweep calls it.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from service.http.protocol import guarded_protocol, keep_alive_hint, unread_bytes
from tests.support.protocol_server import LOOPS, REQUEST, read_response, serving


@pytest.mark.parametrize("loop", LOOPS)
def test_a_fresh_connection_that_sends_nothing_is_closed_without_a_408(loop: str) -> None:
    async def run() -> bytes:
        async with serving(guarded_protocol(0.2, 0.2, 1.0, keep_alive_s=0.2), 0.2) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = await asyncio.wait_for(reader.read(), 5.0)
            writer.close()
            return data

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(run()) == b""


def test_the_keep_alive_hint_is_whole_seconds_rounded_down_and_none_under_one() -> None:
    assert keep_alive_hint(5.0) == [("keep-alive", "timeout=5")]
    assert keep_alive_hint(2.9) == [("keep-alive", "timeout=2")]
    assert keep_alive_hint(0.5) == []  # "timeout=0" would tell a client not to keep it at all


def test_unread_bytes_counts_what_the_kernel_holds_for_the_socket() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert unread_bytes(right) == 0
        left.sendall(b"12345")
        time.sleep(0.01)
        assert unread_bytes(right) == 5
        right.recv(5)
        assert unread_bytes(right) == 0


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("used", [False, True], ids=["fresh connection", "after a response"])
def test_a_request_that_reached_the_host_as_the_idle_time_ran_out_is_answered(used: bool, loop: str) -> None:
    protocol = guarded_protocol(10.0, 10.0, 1.0, keep_alive_s=5.0)

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        async with serving(protocol, 5.0) as (port, _):
            client = socket.create_connection(("127.0.0.1", port), timeout=5.0)
            with client:
                if used:
                    client.sendall(REQUEST)
                    assert (await loop.run_in_executor(None, read_response, client)).startswith(b"HTTP/1.1 200")
                while not protocol.read_deadlines.connections:
                    await asyncio.sleep(0.01)
                (connection,) = protocol.read_deadlines.connections

                def request_arrives_as_the_time_runs_out() -> None:
                    client.sendall(REQUEST)
                    time.sleep(0.02)  # the loop is busy: the request waits in the kernel, unread
                    connection.read_due = float("inf")
                    connection.read_timed_out()  # as the sweep calls it

                loop.call_soon(request_arrives_as_the_time_runs_out)
                return await loop.run_in_executor(None, read_response, client)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(run()).startswith(b"HTTP/1.1 200")
