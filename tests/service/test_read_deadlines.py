"""One timer per loop times out the connections whose read phase is past due (http/read_deadlines.py)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

from service.http.read_deadlines import (
    MAX_INTERVAL_S,
    MAX_TIMEOUTS_PER_PASS,
    MIN_INTERVAL_S,
    ReadDeadlines,
    sweep_interval,
)


class Connection:
    def __init__(self, due: float) -> None:
        self.read_due = due
        self.timed_out = 0

    def read_timed_out(self) -> None:
        self.timed_out += 1


def test_the_interval_is_a_tenth_of_the_shortest_time_out_within_bounds() -> None:
    assert sweep_interval(10.0, 1.0) == 0.1
    assert sweep_interval(0.0, 10.0) == MIN_INTERVAL_S
    assert sweep_interval(600.0) == MAX_INTERVAL_S


def test_only_connections_past_due_time_out_once_and_the_timer_stops_with_the_last() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines(0.01)
        late, early, idle = Connection(loop.time() + 0.02), Connection(loop.time() + 60), Connection(math.inf)
        for connection in (late, early, idle):
            deadlines.add(connection, loop)
        await asyncio.sleep(0.1)
        assert (late.timed_out, early.timed_out, idle.timed_out) == (1, 0, 0)
        assert late.read_due == math.inf  # disarmed: a connection is timed out once per phase
        for connection in (late, early, idle):
            deadlines.remove(connection)
        await asyncio.sleep(0.03)
        assert not deadlines.sweeping

    asyncio.run(run())


def test_a_pass_times_out_at_most_a_bounded_number_of_connections() -> None:
    """Many connections past due at once (opened together, idle together) are timed out a few at a
    time, with the loop's other callbacks run between the passes."""

    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines(0.05)
        ticks = 0
        passes: list[int] = []  # for each time-out, the loop's tick it came in

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            loop.call_soon(tick)

        class Counted(Connection):
            def read_timed_out(self) -> None:
                passes.append(ticks)
                deadlines.remove(self)

        connections = [Counted(loop.time()) for _ in range(3 * MAX_TIMEOUTS_PER_PASS + 5)]
        for connection in connections:
            deadlines.add(connection, loop)
        tick()
        started = loop.time()
        while deadlines.connections and loop.time() - started < 5:
            await asyncio.sleep(0.005)
        return passes

    passes = asyncio.run(run())
    sizes = list(Counter(passes).values())
    assert len(passes) == 3 * MAX_TIMEOUTS_PER_PASS + 5
    assert sizes == [MAX_TIMEOUTS_PER_PASS] * 3 + [5]
