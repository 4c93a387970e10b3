"""The overload case's step (`clients/bench/harden.py`'s `offer`) against a loopback server that counts connections."""

from __future__ import annotations

import asyncio
import threading

from clients.bench import harden
from tests.support.counting_server import counting_handler


def test_a_step_s_clients_hold_the_warm_connections_they_are_told_before_the_first_request() -> None:
    """`ctr bench harden --warm-connections N`: N clients have a connection open before the step's first
    request (the rest open one when they need it), and every request is answered."""
    ready = threading.Event()
    stop = threading.Event()
    state: dict = {}

    async def ok(_: int) -> bytes:
        state.setdefault("accepted_at_first_request", len(accepted))
        return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    handle, accepted = counting_handler(ok)

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        state["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        step = harden.offer(state["port"], b"{}", rate=8, seconds=1.0, connections=32, warm_connections=12)
    finally:
        stop.set()
        thread.join(10)
    assert step["statuses"] == {"200": 8}
    assert state["accepted_at_first_request"] == 12  # the ones it was told: not the default 512


def test_several_drains_are_summed_and_each_drain_that_lost_a_request_is_counted_once() -> None:
    """`ctr bench harden --cases drain --drain-repeats N`: the figure is how many drains lost any request."""
    drains = [
        {"clients": 64, "outcomes": {"200": 10, "unsent": 3}, "no_response": 0, "exited": True, "exit_s": 0.3},
        {"clients": 64, "outcomes": {"200": 8, "no_response": 2}, "no_response": 2, "exited": True, "exit_s": 20.4},
        {"clients": 64, "outcomes": {"200": 9, "no_response": 1}, "no_response": 1, "exited": False, "exit_s": 0.4},
    ]
    summary = harden.drains_summary(drains, workers=2)
    assert summary["drains"] == 3 and summary["drains_with_no_response"] == 2 and summary["no_response"] == 3
    assert summary["outcomes"] == {"200": 27, "no_response": 3, "unsent": 3}
    assert summary["no_response_by_drain"] == [0, 2, 1] and summary["exit_s_max"] == 20.4
    assert summary["workers"] == 2 and summary["clients"] == 64 and summary["all_exited"] is False
