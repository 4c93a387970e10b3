"""Admission at the door: the loop-delay watch (CoDel's rule) and the large-body byte budget."""

from __future__ import annotations

import asyncio

from service.http.overload import BodyBudget, LoopDelay


def test_a_standing_delay_is_overload_and_one_short_delay_ends_it() -> None:
    watch = LoopDelay(target_s=0.05, interval_s=0.1)
    for i in range(30):  # a burst: one late sample in a window is not a standing queue
        watch.observe(0.2 if i % 10 == 0 else 0.001, now=i * 0.01)
    assert not watch.overloaded
    for i in range(30, 60):  # every sample late for a whole window: overloaded
        watch.observe(0.2, now=i * 0.01)
    assert watch.overloaded
    watch.observe(0.001, now=0.605)  # the loop caught up
    assert not watch.overloaded


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
