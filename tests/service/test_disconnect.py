"""How a waiting request learns that its client left (service/http/disconnect.py)."""

from __future__ import annotations

import asyncio

from service.http.body import deadline_for
from service.http.disconnect import DEPARTURE, Departure, DisconnectWatch, watcher


def test_a_departure_calls_back_once_when_the_connection_is_lost() -> None:
    calls: list[str] = []
    departure = Departure()
    watch = departure.watch(lambda: calls.append("gone"))
    assert not watch.gone
    departure.leave()
    departure.leave()
    assert watch.gone and calls == ["gone"]


def test_a_stopped_departure_calls_nothing_and_a_late_watch_hears_at_once() -> None:
    calls: list[str] = []
    departure = Departure()
    departure.watch(lambda: calls.append("stopped")).stop()
    departure.leave()
    assert calls == []
    departure.watch(lambda: calls.append("late"))  # the client had already left
    assert calls == ["late"]


def test_the_watcher_is_the_connection_s_departure_where_the_scope_has_one() -> None:
    async def receive() -> dict:
        return {"type": "http.disconnect"}

    departure = Departure()
    assert watcher({DEPARTURE: departure}, receive)(lambda: None) is departure

    async def elsewhere() -> None:  # any other server: a watch on receive()
        gone = asyncio.Event()
        watch = watcher({}, receive)(gone.set)
        assert isinstance(watch, DisconnectWatch)
        await asyncio.wait_for(gone.wait(), 1)
        assert watch.gone

    asyncio.run(elsewhere())


def test_a_deadline_counts_from_when_the_request_arrived() -> None:
    assert deadline_for(1000, None, arrived=5.0) == 6.0
    assert deadline_for(1000, "250", arrived=5.0) == 5.25


def test_the_timeout_header_may_only_lower_the_servers_deadline() -> None:
    """X-Request-Timeout-Ms lowers the deadline (CTR_REQUEST_TIMEOUT_MS); a higher value does not raise it:
    a client cannot hold the server's resources past its configured limit."""
    assert deadline_for(1000, "2000", arrived=5.0) == 6.0
    assert deadline_for(1000, "1e9", arrived=5.0) == 6.0
