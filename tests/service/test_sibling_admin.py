"""Admin operations fanned out over worker processes' Unix sockets (service/sibling_admin.py).

Each worker here is a ``SiblingAdmin`` in one event loop with its own operation (what the admin route's
``operate`` does against that worker's models); the real processes and models are in
tests/integration/test_workers.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.sibling_admin import Outcome, SiblingAdmin, combined

LOADED = (200, {"name": "esmm", "versions": [2]})


def worker(directory: Path, index: int, calls: list, outcome: Outcome = LOADED, **kwargs: float) -> tuple:
    async def operate(op: str, name: str) -> Outcome:
        calls.append((index, op, name))
        return outcome

    return SiblingAdmin(directory, index, 3, **kwargs), operate


def test_every_worker_does_the_operation_and_their_common_answer_is_given(tmp_path: Path) -> None:
    calls: list = []
    workers = [worker(tmp_path, i, calls) for i in range(3)]

    async def scenario() -> Outcome:
        for admin, operate in workers[1:]:
            await admin.listen(operate)
        first, operate = workers[0]
        try:
            return await first.everywhere("load", "esmm", operate)
        finally:
            for admin, _ in workers[1:]:
                admin.close()

    assert asyncio.run(scenario()) == LOADED
    assert sorted(calls) == [(0, "load", "esmm"), (1, "load", "esmm"), (2, "load", "esmm")]


def test_a_worker_that_has_stopped_is_named_at_once(tmp_path: Path) -> None:
    calls: list = []
    workers = [worker(tmp_path, i, calls) for i in range(3)]

    async def scenario() -> tuple[Outcome, float]:
        for admin, operate in workers[1:]:
            await admin.listen(operate)
        workers[2][0].close()  # stopping: its socket closed
        started = asyncio.get_running_loop().time()
        answer = await workers[0][0].everywhere("load", "esmm", workers[0][1])
        return answer, asyncio.get_running_loop().time() - started

    (status, body), took_s = asyncio.run(scenario())
    assert status == 500 and "worker 2: 502 no answer" in body["error"] and "refused" in body["error"]
    assert took_s < 60  # not waited for as a worker still starting (ANSWER_WITHIN_S, 120 s)
    assert sorted(calls) == [(0, "load", "esmm"), (1, "load", "esmm")]


def test_workers_that_answer_differently_give_a_500_naming_each(tmp_path: Path) -> None:
    calls: list = []
    refused = (409, {"error": "model 'esmm': version 2 refused: sha256 mismatch", "field": "name"})
    workers = [worker(tmp_path, 0, calls), worker(tmp_path, 1, calls, refused), worker(tmp_path, 2, calls)]

    async def scenario() -> Outcome:
        for admin, operate in workers[1:]:
            await admin.listen(operate)
        return await workers[0][0].everywhere("load", "esmm", workers[0][1])

    status, body = asyncio.run(scenario())
    assert status == 500
    assert "worker 1: 409 model 'esmm': version 2 refused: sha256 mismatch" in body["error"]
    assert 'worker 0: 200 {"name": "esmm", "versions": [2]}' in body["error"]


def test_a_worker_still_starting_is_waited_for(tmp_path: Path) -> None:
    calls: list = []
    workers = [worker(tmp_path, i, calls) for i in range(3)]

    async def start_late(admin: SiblingAdmin, operate: object, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await admin.listen(operate)  # type: ignore[arg-type]

    async def scenario() -> Outcome:
        starting = [asyncio.create_task(start_late(a, o, 0.2 * i)) for i, (a, o) in enumerate(workers[1:], 1)]
        answer = await workers[0][0].everywhere("unload", "esmm", workers[0][1])
        await asyncio.gather(*starting)
        return answer

    assert asyncio.run(scenario()) == LOADED
    assert len(calls) == 3


def test_a_worker_that_does_not_answer_in_time_is_named(tmp_path: Path) -> None:
    calls: list = []
    first, operate = worker(tmp_path, 0, calls, answer_within_s=0.3)

    async def never(op: str, name: str) -> Outcome:
        await asyncio.sleep(10)
        return LOADED

    async def scenario() -> Outcome:
        slow = SiblingAdmin(tmp_path, 1, 3)
        await slow.listen(never)  # worker 2 never starts at all
        return await first.everywhere("load", "esmm", operate)

    status, body = asyncio.run(scenario())
    assert status == 500
    assert "worker 1: 504 did not answer within 0.3 s" in body["error"]
    assert "worker 2: 504 did not answer within 0.3 s" in body["error"]


def test_outcomes_are_compared_whole() -> None:
    assert combined({0: LOADED, 1: (200, {"versions": [2], "name": "esmm"})}) == LOADED
    assert combined({0: LOADED, 1: (200, {"name": "esmm", "versions": [1, 2]})})[0] == 500
