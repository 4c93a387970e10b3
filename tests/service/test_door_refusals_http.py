"""The door's 503 (service/http/protocol.py, ``_refuse``) on a real uvicorn server on a loopback port, its watch
refusing every inference request as under overload: which requests it refuses, when the 503 closes the
connection (and says so), and that a refusal is no answer to the watch's answer rate. Each was left untested:
a V2 infer path let through, a refusal while draining or to an ``Expect: 100-continue`` request said nothing of
the close, refusals counted as answers (raising the rate the door reads the queue by), and every test passed."""

from __future__ import annotations

import asyncio
import socket

from service.http.protocol import guarded_protocol
from tests.support.protocol_server import LOOPS, REQUEST, read_until_closed, serving
from tests.support.refusing_watch import RefusingWatch

CLOSING = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
SCORE = b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"


def exchanged(requests: list[bytes], drain: bool = False) -> tuple[bytes, int]:
    """What one connection receives for ``requests`` (each answered before the next is sent, the last read
    until the server closes or 5 s pass), told to drain first where ``drain`` (as on SIGTERM); and how many
    answers the watch counted."""
    watch = RefusingWatch(0.025, 0.1)
    protocol = guarded_protocol(10.0, 10.0, 1.0, watch=watch, shed_paths=("/v1/score",))

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        async with serving(protocol, 5.0) as (port, _):
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
                while not protocol.read_deadlines.connections:
                    await asyncio.sleep(0.01)
                if drain:
                    (connection,) = protocol.read_deadlines.connections
                    connection.shutdown()
                received = b""
                for request in requests[:-1]:
                    client.sendall(request)
                    received += await loop.run_in_executor(None, read_one, client)
                client.sendall(requests[-1])
                received += await loop.run_in_executor(None, read_until_closed, client)
        watch.stop()
        return received

    with asyncio.Runner(loop_factory=LOOPS["asyncio"]) as runner:
        return runner.run(run()), watch.answered


def read_one(client: socket.socket) -> bytes:
    """One response, read to the end of its body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b":", 1) for line in head.lower().split(b"\r\n")[1:])
    length = int(fields[b"content-length"])
    while len(body) < length:  # the body's rest
        body += client.recv(65536)
    return head + b"\r\n\r\n" + body


def head_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[0].lower()


def test_every_v2_infer_path_is_refused_at_the_door_as_the_shed_paths_are() -> None:
    infer = b"POST /v2/models/esmm/versions/3/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
    response, _ = exchanged([infer, REQUEST + CLOSING])
    assert response.startswith(b"HTTP/1.1 503 ") and b"\r\nretry-after: 1\r\n" in head_of(response), response
    assert response.count(b"HTTP/1.1 200 ") == 2  # the connection kept, and what is not inference answered


def test_a_refusal_while_draining_says_connection_close_and_closes() -> None:
    response, _ = exchanged([SCORE + b"\r\n{}"], drain=True)
    assert response.startswith(b"HTTP/1.1 503 "), response
    assert b"\r\nconnection: close" in head_of(response) and b"keep-alive" not in head_of(response)


def test_a_refusal_of_a_request_waiting_for_100_continue_says_connection_close() -> None:
    response, _ = exchanged([SCORE + b"expect: 100-continue\r\n\r\n"])
    assert response.startswith(b"HTTP/1.1 503 ") and b"\r\nconnection: close" in head_of(response), response


def test_refusals_are_no_answers_to_the_watch() -> None:
    refused = SCORE + b"\r\n{}"
    response, answered = exchanged([refused, refused, refused, CLOSING])
    assert response.count(b"HTTP/1.1 503 ") == 3 and response.count(b"HTTP/1.1 200 ") == 1, response
    assert answered == 1
