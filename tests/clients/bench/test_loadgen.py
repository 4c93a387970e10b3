"""The load generator's schedule and histogram (the open-loop run itself is exercised by the bench test)."""

from __future__ import annotations

import math

import pytest

from clients.bench.histogram import LatencyHistogram
from clients.bench.loadgen import burst_schedule, schedule
from tests.support.counting_server import counting_handler


def test_schedules() -> None:
    constant = schedule(100, 2.0, "constant")
    assert len(constant) == 200 and constant[1] - constant[0] == pytest.approx(0.01)
    poisson = schedule(1000, 5.0, "poisson", seed=1)
    assert abs(len(poisson) - 5000) < 5 * math.sqrt(5000)
    assert poisson == sorted(poisson) and poisson[-1] < 5.0
    with pytest.raises(ValueError, match="constant or poisson"):
        schedule(1, 1, "bursty")
    burst = burst_schedule(100, 2.0, 1000, 0.5, 0.1)  # 200 over 2 s, and 100 more in [0.5, 0.6)
    assert len(burst) == 300 and burst == sorted(burst)
    assert sum(0.5 <= t < 0.6 for t in burst) == 10 + 100 and burst[-1] < 2.0


def test_histogram_percentiles_within_precision() -> None:
    histogram = LatencyHistogram(precision=0.01)
    for value in range(1, 10_001):
        histogram.record(float(value))
    for q, exact in ((50, 5000), (90, 9000), (99, 9900), (99.9, 9990)):
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.011)
    other = LatencyHistogram()
    other.record(50_000.0)
    histogram.merge(other)
    assert histogram.count == 10_001 and histogram.percentile(100) == 50_000.0
    assert math.isnan(LatencyHistogram().percentile(50))


def test_chunked_answers_are_read_whole() -> None:
    """A server that streams its answers (Transfer-Encoding: chunked, as Ray Serve's proxy does) keeps
    its connection usable: each answer is read to its last chunk."""
    import asyncio

    from clients.bench.loadgen import run_load

    answer = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
        b'5\r\n{"a":\r\n4;ext=1\r\n 1}\n\r\n0\r\n\r\n'
    )

    async def scenario() -> tuple:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(
                    next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
                )
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await run_load("127.0.0.1", port, "/", [b"{}"], rate=200, duration_s=0.5, connections=2)
        return result.ok, result.errors, result.sent

    ok, errors, sent = asyncio.run(scenario())
    assert errors == 0 and ok == sent == 100


def test_complete_response_waits_for_every_byte() -> None:
    from clients.bench.loadgen import complete_response

    whole = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nretry-after: 1\r\n\r\nhello"
    for cut in range(len(whole)):
        assert complete_response(bytearray(whole[:cut])) is None
    assert complete_response(bytearray(whole + b"HTTP/1.1 200")) == (503, len(whole), True)
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n"
    assert complete_response(bytearray(closing)) == (200, len(closing), False)
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    for cut in range(len(chunked)):
        assert complete_response(bytearray(chunked[:cut])) is None
    assert complete_response(bytearray(chunked)) == (200, len(chunked), True)


def test_unanswered_requests_time_out_and_close_their_connections() -> None:
    import asyncio

    from clients.bench.loadgen import run_load

    async def never(_: int) -> None:
        return None

    async def scenario() -> tuple:
        handle, accepted = counting_handler(never)
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await run_load(
                "127.0.0.1", port, "/", [b"{}"], rate=40, duration_s=0.25, connections=4, timeout_s=0.3
            )
        return result, len(accepted)

    result, connections = asyncio.run(scenario())
    assert result.sent == 10 and result.ok == 0
    assert result.statuses["error"] + result.statuses["unanswered"] == 10, result.statuses
    assert result.statuses["error"] >= 4  # each connection's request timed out, and its connection closed
    assert result.failures == {"timed out": result.statuses["error"]}
    assert connections > 4  # closed connections were replaced by new ones for the requests waiting


def test_connection_close_answers_are_not_reused_and_waits_keep_arrival_order() -> None:
    import asyncio

    from clients.bench.loadgen import run_load

    async def slow_then_close(_: int) -> bytes:
        await asyncio.sleep(0.02)
        return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"

    async def scenario() -> tuple:
        handle, accepted = counting_handler(slow_then_close)
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await run_load("127.0.0.1", port, "/", [b"{}"], rate=200, duration_s=0.2, connections=2)
        return result, len(accepted)

    result, connections = asyncio.run(scenario())
    assert result.statuses == {200: 40} and result.ok == 40
    assert connections == 40  # one connection per request: none reused after "Connection: close"
    assert result.send_lag.percentile(100) > 20_000  # at most 2 open: the others waited their turn


def test_connections_idle_past_the_client_s_limit_are_closed_by_the_generator() -> None:
    """``idle_close_s``: a connection left free that long is closed by the generator (none is lost to
    it), so requests spaced further apart than that each take a new connection; without it, one is kept."""
    import asyncio

    from clients.bench.loadgen import run_load

    async def ok(_: int) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def scenario(idle_close_s: float | None) -> tuple:
        handle, accepted = counting_handler(ok)
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await run_load(
                "127.0.0.1", port, "/", [b"{}"], rate=4, duration_s=1.25, warm_connections=3, idle_close_s=idle_close_s
            )
        return result, len(accepted)

    # the first request takes a warm connection; the others are closed unused (the generator's sweep runs
    # each 0.1 s: a connection goes 0.05-0.15 s after it is freed, before the next request, 0.25 s later)
    for idle_close_s, connections in ((0.05, 3 + 4), (None, 3)):
        result, accepted = asyncio.run(scenario(idle_close_s))
        assert result.statuses == {200: 5} and accepted == connections, (idle_close_s, result.statuses, accepted)


def test_a_server_that_refuses_connections_fails_every_request_at_once() -> None:
    """Nothing listening: each request's connection attempt fails and is counted, none waits for the end."""
    import asyncio
    import socket

    from clients.bench.loadgen import run_load

    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = asyncio.run(run_load("127.0.0.1", port, "/", [b"{}"], rate=200, duration_s=0.25, connections=2))
    assert result.statuses == {"error": 50} and result.ok == 0  # none left "unanswered" at the end
    assert result.failures == {"connect failed": 50}


def test_a_connection_closed_under_a_request_is_told_apart_with_its_idle_time() -> None:
    """A server that answers each connection's first request and closes it when the second comes: every
    second request fails as "closed under a request", recorded with how long its connection had been
    free and how many answers it had given."""
    import asyncio

    from clients.bench.loadgen import run_load

    async def one_answer_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answered in (False, True):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:])
            await reader.readexactly(length)
            if not answered:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        writer.close()

    async def scenario():
        server = await asyncio.start_server(one_answer_per_connection, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await run_load("127.0.0.1", port, "/", [b"{}"], rate=50, duration_s=0.2, connections=1)

    result = asyncio.run(scenario())
    assert result.sent == 10 and result.ok + result.statuses["error"] == 10, result.statuses
    assert result.ok >= 4 and result.failures == {"closed under a request": result.statuses["error"]} != {}
    for free_s, closed_after_s, answers in result.closed_under:
        # free for about a schedule gap (20 ms), or next to nothing where the generator ran behind its schedule
        assert answers == 1 and 0 <= free_s < 1 and 0 <= closed_after_s < 1
