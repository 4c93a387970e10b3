"""The door (service/http/protocol.py with the watch of service/http/overload.py) counts the requests a
direct route holds among those in hand, on a real uvicorn server on a loopback port: under ``ctr serve``
``/v1/score`` is answered without a task, so a door that counted tasks alone never saw its queue and let
every scoring request through an overload. Left out of the count, every test passed."""

from __future__ import annotations

import asyncio
import socket

from service.http.overload import QueueWatch
from service.http.protocol import DirectRoutes, Reply, guarded_protocol
from tests.support.protocol_server import LOOPS, serving

POST = b"POST /direct HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


def test_requests_a_direct_route_holds_count_as_in_hand_at_the_door() -> None:
    held: list[Reply] = []
    routes = DirectRoutes({"/direct": lambda scope, body, reply: held.append(reply)})
    watch = QueueWatch(target_s=0.0, interval_s=0.0, min_in_flight=2)  # two in hand, any wait: a queue
    protocol = guarded_protocol(10.0, 10.0, 1.0, watch=watch, shed_paths=("/direct",), direct=routes)

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        async with serving(protocol, 5.0) as (port, _):
            clients = [socket.create_connection(("127.0.0.1", port), timeout=5.0) for _ in range(3)]
            try:
                for client in clients[:2]:
                    client.sendall(POST)
                while len(held) < 2:  # both with the route, unanswered
                    await asyncio.sleep(0.01)
                clients[2].sendall(POST)
                third = await loop.run_in_executor(None, clients[2].recv, 4096)
                for reply in held:
                    reply(200, [(b"content-length", b"2")], b"ok")
                return third
            finally:
                watch.stop()
                for client in clients:
                    client.close()

    with asyncio.Runner(loop_factory=LOOPS["asyncio"]) as runner:
        third = runner.run(run())
    assert third.startswith(b"HTTP/1.1 503 "), third
    assert len(held) == 2 and routes.in_flight == 0
