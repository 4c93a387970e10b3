"""The server's side of the lossless drain (service/http/drain.py), on a real uvicorn on loopback.

Three ways a SIGTERM used to lose a request, each made certain here on the server's loop:

- a connection the loop made (``connection_made``) after uvicorn had told its connections to drain
  served keep-alive until the drain time-out and was closed under a request. Told of the drain, the
  protocol answers it with ``Connection: close`` and closes it; before the drain the same request keeps
  its connection (the control);
- a connection waiting in the listener's queue, its request sent, as the listener closes: uvicorn's
  server resets it (the control, no response); the draining server accepts it first and answers it;
- a worker told its clients to reconnect while another worker still held the shared listener, whose
  queue was then reset: the draining server tells its connections only once no process holds it.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
import uvicorn

from service.http.drain import DrainingServer
from service.http.protocol import guarded_protocol
from tests.support.protocol_server import LOOPS, REQUEST, read_response, serving


def one_request(port: int) -> tuple[bytes, bytes]:
    """The response to one request on a fresh connection, and what follows it (b"" once closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(REQUEST)
        return response_and_after(client)


def response_and_after(client: socket.socket) -> tuple[bytes, bytes]:
    response = read_response(client)
    client.settimeout(0.5)
    try:
        return response, client.recv(4096)
    except TimeoutError:
        return response, b"(still open)"
    except ConnectionResetError:
        return response, b"(reset)"


@pytest.mark.parametrize("loop", LOOPS)
def test_a_connection_made_after_the_signal_is_answered_with_connection_close_and_closed(loop: str) -> None:
    protocol = guarded_protocol(10.0, 10.0, 5.0)

    async def run() -> list[tuple[bytes, bytes]]:
        async with serving(protocol, 5.0) as (port, _):
            before = await asyncio.to_thread(one_request, port)
            protocol.server_draining = True  # as DrainingServer.shutdown does before it tells the connections
            return [before, await asyncio.to_thread(one_request, port)]

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        (kept, kept_then), (closed, closed_then) = runner.run(run())
    assert kept.startswith(b"HTTP/1.1 200") and b"connection: close" not in kept.lower()
    assert kept_then == b"(still open)"
    assert closed.startswith(b"HTTP/1.1 200") and b"connection: close" in closed.lower()
    assert closed_then == b""


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("server_class", [DrainingServer, uvicorn.Server], ids=["draining", "uvicorn"])
def test_a_request_waiting_in_the_listeners_queue_at_the_signal_is_answered(
    server_class: type[uvicorn.Server], loop: str
) -> None:
    protocol = guarded_protocol(10.0, 10.0, 5.0)

    async def run() -> tuple[bytes, bytes]:
        async with serving(protocol, 5.0, server_class=server_class) as (port, server):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:  # the kernel completes it,
                client.sendall(REQUEST)  # and the loop, held here, has not accepted it when the shutdown starts
                await server.shutdown()  # returns once no connection is left
                return response_and_after(client)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        response, then = runner.run(run())
    if server_class is DrainingServer:
        assert response.startswith(b"HTTP/1.1 200") and b"connection: close" in response.lower()
        assert then == b""
    else:
        assert response == b""  # reset as the listener closed: the request is lost


def request_on(client: socket.socket) -> bytes:
    client.sendall(REQUEST)
    return read_response(client)


@pytest.mark.parametrize("loop", LOOPS)
def test_connections_are_told_to_drain_only_once_no_other_process_holds_the_listener(loop: str) -> None:
    """Another worker's share of the listener is a descriptor of the same socket, held here: while it is
    open the draining server serves its connection as usual (a client told to reconnect now would be
    queued where it may be reset); once it is closed, the next answer says ``Connection: close``."""
    protocol = guarded_protocol(10.0, 10.0, 5.0)

    async def run() -> list[bytes]:
        async with serving(protocol, 5.0, server_class=DrainingServer) as (port, server):
            (listening,) = server.servers[0].sockets
            other_worker = socket.socket(fileno=os.dup(listening.fileno()))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                answers = [await asyncio.to_thread(request_on, client)]
                shutdown = asyncio.ensure_future(server.shutdown())
                await asyncio.sleep(0.3)
                answers.append(await asyncio.to_thread(request_on, client))
                other_worker.close()
                await asyncio.sleep(0.1)
                answers.append(await asyncio.to_thread(request_on, client))
                await shutdown
            return answers

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        before, while_shared, after = runner.run(run())
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in (before, while_shared, after))
    assert b"connection: close" not in before.lower() and b"connection: close" not in while_shared.lower()
    assert b"connection: close" in after.lower()
