"""Admission at the door: the queue watch (CoDel's rule) and the large-body byte budget."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from service.http.overload import EARLY_FRACTION, MIN_TREND_READS, BodyBudget, QueueWatch, WaitTrend


@dataclass
class Request:
    response_complete: bool = False
    disconnected: bool = False


def test_a_burst_passes_and_a_standing_queue_is_refused_until_it_drains() -> None:
    watch = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=4)
    # a burst: waits over the target for less than the interval are all admitted
    assert not any(watch.refuse(0.2, now=0.001 * i, in_flight=50, sheddable=True) for i in range(10))
    assert not watch.refuse(0.001, now=0.011, in_flight=50, sheddable=True)
    # the same waits standing for the interval: overloaded, late inference requests refused at once
    late = [watch.refuse(0.2, now=0.1 + 0.005 * i, in_flight=50, sheddable=True) for i in range(10)]
    assert late[:4] == [False] * 4 and all(late[4:]) and watch.overloaded
    assert not watch.refuse(0.2, now=0.2, in_flight=50, sheddable=False)  # health, metrics: never refused
    # overloaded, a request that finds the delay under the target is admitted, the state stays
    assert not watch.refuse(0.001, now=0.201, in_flight=50, sheddable=True) and watch.overloaded
    assert watch.refuse(0.2, now=0.202, in_flight=50, sheddable=True)
    # under the target for an interval: no longer overloaded
    assert not any(watch.refuse(0.001, now=0.21 + 0.005 * i, in_flight=50, sheddable=True) for i in range(6))
    assert not watch.overloaded
    assert watch.refused == 7


def test_read_waits_rising_turn_the_door_after_a_quarter_of_the_interval() -> None:
    """Requests arriving twice as fast as the loop reads them: each waits longer to be read than the one
    before (0.5 s per s), and the door refuses from a quarter of the interval on, not the whole."""
    watch = QueueWatch(target_s=0.025, interval_s=0.1, min_in_flight=4)
    decisions = [watch.refuse(0.03 + 0.5 * 0.001 * i, now=0.001 * i, in_flight=50, sheddable=True) for i in range(60)]
    first = decisions.index(True)
    assert first == round(EARLY_FRACTION * 100) and all(decisions[first:]) and watch.early_turns == 1


def test_read_waits_falling_after_a_pause_wait_out_the_whole_interval() -> None:
    """After a pause the backlog is read oldest first, faster than it grew: the waits fall, and the delay
    above the target for as long is left to the interval, as before."""
    watch = QueueWatch(target_s=0.025, interval_s=0.1, min_in_flight=4)
    decisions = [watch.refuse(0.2 - 0.5 * 0.001 * i, now=0.001 * i, in_flight=50, sheddable=True) for i in range(120)]
    assert decisions.index(True) == 100 and watch.early_turns == 0
    # level waits, as many reads: no trend either
    level = QueueWatch(target_s=0.025, interval_s=0.1, min_in_flight=4)
    assert not any(level.refuse(0.2, now=0.001 * i, in_flight=50, sheddable=True) for i in range(100))


def test_a_rising_trend_needs_enough_reads() -> None:
    watch = QueueWatch(target_s=0.025, interval_s=0.1, min_in_flight=4)
    times = [0.01 * i for i in range(MIN_TREND_READS - 1)]  # 15 reads over 140 ms, waits rising steeply
    decisions = [watch.refuse(0.03 + t, now=t, in_flight=50, sheddable=True) for t in times]
    assert decisions.index(True) == 10 and watch.early_turns == 0  # at the interval (100 ms), not before


def test_the_wait_trend_is_the_least_squares_slope() -> None:
    rng = np.random.default_rng(3)
    times = 1000.0 + np.sort(rng.uniform(0, 0.05, 200))  # a loop clock far from zero
    waits = 0.03 + 0.4 * (times - times[0]) + rng.normal(0, 0.004, times.size)
    trend = WaitTrend()
    trend.restart(times[0])
    for t, w in zip(times, waits, strict=True):
        trend.add(t, w)
    assert trend.slope() == pytest.approx(np.polyfit(times - times[0], waits, 1)[0], rel=1e-9)
    trend.restart(5.0)
    for _ in range(20):
        trend.add(5.0, 0.1)  # read at one instant: no slope
    assert trend.slope() == 0.0


def test_the_oldest_request_in_hand_counts_and_few_requests_in_hand_are_no_queue() -> None:
    watch = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=4)
    slow, quick = Request(), Request()
    watch.read(0.0, slow)
    watch.read(0.09, quick)
    assert watch.oldest_s(0.1) == 0.1
    # new requests read at once, but the oldest in hand has been waiting: a standing queue
    decisions = [watch.refuse(0.0, now=0.1 + 0.01 * i, in_flight=50, sheddable=True) for i in range(4)]
    assert decisions == [False, False, True, True]
    slow.response_complete = True
    assert watch.oldest_s(0.14) == pytest.approx(0.05)
    quick.disconnected = True
    assert watch.oldest_s(0.2) == 0.0
    # a long wait with 3 requests in hand is the machine's doing (another process), not a queue
    other = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=4)
    assert not any(other.refuse(1.0, now=0.01 * i, in_flight=3, sheddable=True) for i in range(20))


def test_min_in_flight_requests_in_hand_are_a_queue_and_one_fewer_is_not() -> None:
    """Overloaded, a late request is refused with exactly ``min_in_flight`` requests in hand, and admitted
    with one fewer (the machine's doing, not a queue); the tests used 50 or 3 in hand with a minimum of 4,
    leaving the boundary itself unpinned."""
    watch = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=4)
    assert [watch.refuse(0.2, now=0.005 * i, in_flight=50, sheddable=True) for i in range(6)] == [False] * 4 + [
        True
    ] * 2
    assert watch.overloaded
    assert watch.refuse(0.2, now=0.03, in_flight=4, sheddable=True)
    assert not watch.refuse(0.2, now=0.031, in_flight=3, sheddable=True) and watch.overloaded
    assert watch.refuse(0.2, now=0.032, in_flight=4, sheddable=True)
    assert watch.refused == 4


def test_answered_requests_leave_the_watch_whatever_the_load() -> None:
    """With few requests in hand the watch is never asked for the oldest: it must not keep the answered."""
    watch = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=16)
    for i in range(1000):
        request = Request()
        watch.read(0.001 * i, request)
        assert not watch.refuse(0.0, now=0.001 * i, in_flight=1, sheddable=True)
        request.response_complete = True
    assert watch.in_hand <= 1


def test_work_in_hand_counts_at_the_rate_the_service_answers() -> None:
    """Little's law: requests in hand ÷ the recent answer rate is a wait, seen as soon as work is admitted
    (before any request in hand has aged past the target); an idle stretch leaves the rate as it was."""
    watch = QueueWatch(target_s=0.025, interval_s=0.02, min_in_flight=4)
    assert watch.expected_wait_s(100) == 0.0  # no answer yet: no rate, no estimate
    now = 0.0
    watch.sample_answer_rate(now)
    for _ in range(40):  # 10 answers every 5 ms, for 200 ms: 2,000 answers per second
        now += 0.005
        watch.answered += 10
        watch.sample_answer_rate(now)
    assert watch.answer_rate == pytest.approx(2000, rel=0.02)
    for _ in range(100):  # half a second idle: no answers, nothing in hand
        now += 0.005
        watch.sample_answer_rate(now)
    assert watch.answer_rate == pytest.approx(2000, rel=0.02)
    assert watch.expected_wait_s(30) == pytest.approx(0.015, rel=0.02)
    # every request read at once, none in hand yet: 30 in hand is under the target, 100 (50 ms) is above
    assert not any(watch.refuse(0.0, now=now + 0.005 * i, in_flight=30, sheddable=True) for i in range(10))
    decisions = [watch.refuse(0.0, now=now + 0.1 + 0.005 * i, in_flight=100, sheddable=True) for i in range(10)]
    assert decisions[:4] == [False] * 4 and all(decisions[4:]) and watch.overloaded
    # the service answering faster (the same work in hand goes quicker): under the target again
    watch.answer_rate = 8000.0
    assert not watch.refuse(0.0, now=now + 0.2, in_flight=100, sheddable=True)


def test_the_watch_samples_every_5_ms_while_busy_and_every_50_ms_while_idle() -> None:
    """Each wake-up of the loop costs CPU: an idle service samples a tenth as often."""

    class CountingWatch(QueueWatch):
        samples = 0

        def sample_answer_rate(self, now: float) -> None:
            self.samples += 1
            super().sample_answer_rate(now)

    async def scenario() -> tuple[int, int]:
        watch = CountingWatch(target_s=0.025, interval_s=0.1)
        watch.watch_loop(asyncio.get_running_loop())
        await asyncio.sleep(0.3)
        idle = watch.samples
        request = Request()
        watch.read(0.0, request)  # one request in hand: busy
        await asyncio.sleep(0.3)
        watch.stop()
        return idle, watch.samples - idle

    idle, busy = asyncio.run(scenario())
    assert idle <= 8 and busy >= 2 * max(idle, 5), (idle, busy)  # about 6 against 60 on a quiet machine


def test_the_body_budget_admits_in_arrival_order_and_times_out() -> None:
    async def scenario() -> list[object]:
        budget = BodyBudget(10)
        first = await budget.acquire(6, 1.0)
        order: list[object] = []

        async def take(name: str, size: int, timeout_s: float) -> None:
            taken = await budget.acquire(size, timeout_s)
            order.append((name, taken))

        waiting = [asyncio.ensure_future(take("b", 6, 1.0)), asyncio.ensure_future(take("c", 2, 1.0))]
        late = asyncio.ensure_future(take("d", 9, 0.05))
        await asyncio.sleep(0.1)  # "c" fits but waits behind "b" (arrival order); "d" times out
        assert order == [("d", None)]
        budget.release(first)
        await asyncio.gather(*waiting, late)
        assert budget.used == 8
        return order

    assert asyncio.run(scenario()) == [("d", None), ("b", 6), ("c", 2)]


def test_the_overload_lasts_until_the_delay_has_stayed_under_the_target_for_an_interval() -> None:
    """A few requests that find the delay under the target in a row end no overload: one that finds it above
    a moment later is refused (CoDel leaves its dropping state only after a whole interval under the target)."""
    watch = QueueWatch(target_s=0.05, interval_s=0.02, min_in_flight=4)
    assert [watch.refuse(0.2, now=0.005 * i, in_flight=50, sheddable=True) for i in range(6)][-1]
    assert not any(watch.refuse(0.001, now=0.026 + 0.001 * i, in_flight=50, sheddable=True) for i in range(3))
    assert watch.overloaded and watch.refuse(0.2, now=0.03, in_flight=50, sheddable=True)


def test_a_body_larger_than_the_whole_budget_takes_all_of_it_rather_than_waiting_for_ever() -> None:
    async def scenario() -> tuple[int | None, int]:
        budget = BodyBudget(10)
        return await budget.acquire(25, 0.05), budget.used

    assert asyncio.run(scenario()) == (10, 10)
