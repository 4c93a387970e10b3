"""Model loads and unloads of a service run as several processes (``CTR_WORKERS`` > 1, workers.py): done by
every worker before the answer.

An admin request reaches whichever worker accepted its connection, and each worker holds its own models:
a load done by that worker alone would leave the others serving the old version until they polled the
repository (and an unload would never reach them); and two workers polling the repository each on its
own schedule serve different versions meanwhile. So each worker listens on a Unix socket in the
directory the workers share (the supervisor's, readable by its user only, removed when it exits), and
the worker that takes a load or unload does it and asks every other worker to do the same, all at once.
It answers when every worker has: with their common answer when they agree (so once a load answers 200,
every worker serves what it names), and otherwise with a 500 naming each worker's outcome. A worker
that is still starting (its socket not there yet) is waited for; one that is stopping (its socket
closed, left in place) is named at once, and so is one that has not answered within ``ANSWER_WITHIN_S``.

Polling (``CTR_POLL_INTERVAL_S``) goes the same way: only worker 0 polls, and a change it finds is loaded
by every worker (``load_everywhere``), so one decision changes them all.

One operation at a time across the workers: an unload and a load sent at once to two workers were each
applied at once everywhere, in one order in one worker and the other order in the other, and left them
apart (one serving, one unloaded) behind two 200s. The worker that takes an operation holds an exclusive
``flock`` on a file of the shared directory until every worker has answered it; the requests between
workers take no lock, so the one holding it is never kept waiting by another that waits for it.

One exchange per connection: a JSON line ``{"op": "load" | "unload" | "poll", "name": ...}`` in (``poll``: a
load polling decided on, which a model unloaded on purpose skips), a JSON line
``{"status": ..., "body": ...}`` out (the HTTP status and JSON body that worker's own route would give).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from service.http.errors import error_object
from service.models.base import ModelLoadError

logger = logging.getLogger(__name__)

ANSWER_WITHIN_S = 120.0  # a load verifies and warms up every new version: generous
CONNECT_RETRY_S = 0.05  # how often a worker whose socket is not there yet is looked for again
LOCK_RETRY_S = 0.01  # how often the operations' lock, held by another operation, is tried again
OPERATIONS = frozenset({"load", "unload", "poll"})
# the longest path a Unix socket can be bound to: its address's sun_path, less the closing NUL
SOCKET_PATH_MAX = (104 if sys.platform == "darwin" else 108) - 1

Outcome = tuple[int, dict]  # the HTTP status and JSON body of an admin operation in one worker
Operation = Callable[[str, str], Awaitable[Outcome]]  # (op, model name) -> that worker's outcome


def socket_path(directory: Path, index: int) -> Path:
    """Where worker ``index`` of the workers sharing ``directory`` listens."""
    return directory / f"admin-{index}.sock"


def socket_paths_too_long(directory: Path, workers: int) -> int | None:
    """The length in bytes of the longest of the workers' socket paths in ``directory`` when it is more than a
    Unix socket's path can be (a long TMPDIR: each worker failed to start with "AF_UNIX path too long"),
    else None."""
    longest = len(os.fsencode(socket_path(directory, workers - 1)))
    return longest if longest > SOCKET_PATH_MAX else None


class SiblingAdmin:
    """Worker ``index`` of ``workers``: its socket, and the way to every other worker's."""

    def __init__(self, directory: Path, index: int, workers: int, answer_within_s: float = ANSWER_WITHIN_S) -> None:
        self.directory = directory
        self.index = index
        self.workers = workers
        self.answer_within_s = answer_within_s
        self._server: asyncio.AbstractServer | None = None

    def path(self, index: int) -> Path:
        return socket_path(self.directory, index)

    async def listen(self, operate: Operation) -> None:
        """Answer the other workers' requests with ``operate`` (this worker's own outcome) until ``close``."""

        async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = json.loads(await reader.readline())
                op, name = request["op"], request["name"]
                if op not in OPERATIONS or not isinstance(name, str):
                    raise ValueError(f"unknown operation {op!r}")
                status, body = await operate(op, name)
                writer.write(json.dumps({"status": status, "body": body}).encode() + b"\n")
                await writer.drain()
            except (OSError, ValueError, KeyError, TypeError) as error:
                logger.warning("admin request from another worker not answered: %s", error)
            finally:
                writer.close()

        # Python 3.13's server removes its socket's file on close (cleanup_socket, on by default): a worker
        # asking a stopped one then found no file, took it for one still starting, and waited 120 s for a 504
        keep_file = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
        self._server = await asyncio.start_unix_server(exchange, path=str(self.path(self.index)), **keep_file)

    def close(self) -> None:
        """Stop answering; the socket's file stays (the supervisor removes the directory), so a worker
        asking from now on is refused at once instead of waiting as for one still starting."""
        if self._server is not None:
            self._server.close()

    async def everywhere(self, op: str, name: str, operate: Operation) -> Outcome:
        """``op`` on ``name`` in this worker (``operate``) and in every other, at once; the common outcome,
        or a 500 naming each worker's."""
        others = [i for i in range(self.workers) if i != self.index]
        async with self._one_operation_at_a_time():
            outcomes = await asyncio.gather(operate(op, name), *(self._ask(i, op, name) for i in others))
        return combined(dict(zip([self.index, *others], outcomes, strict=True)))

    @asynccontextmanager
    async def _one_operation_at_a_time(self) -> AsyncIterator[None]:
        """The workers' operations lock (a ``flock``, tried without blocking the event loop, which must go on
        answering the other workers' requests meanwhile)."""
        descriptor = os.open(self.directory / "operations.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(LOCK_RETRY_S)
            yield
        finally:
            os.close(descriptor)

    async def load_everywhere(self, operate: Operation, name: str) -> None:
        """A load of ``name`` in every worker (what worker 0's repository poll found); ModelLoadError with
        the combined outcome's message unless every worker loaded alike (200, or 409: some version refused
        and named in each worker's log, the rest served)."""
        status, body = await self.everywhere("poll", name, operate)
        if status not in (200, 409):
            raise ModelLoadError(body["error"])

    async def _ask(self, index: int, op: str, name: str) -> Outcome:
        try:
            return await asyncio.wait_for(self._exchange(index, op, name), self.answer_within_s)
        except TimeoutError:
            return 504, error_object(f"did not answer within {self.answer_within_s:g} s")
        except (OSError, ValueError, KeyError) as error:
            return 502, error_object(f"no answer: {error}")

    async def _exchange(self, index: int, op: str, name: str) -> Outcome:
        path = self.path(index)
        while True:  # a worker still starting has no socket yet
            try:
                reader, writer = await asyncio.open_unix_connection(str(path))
                break
            except FileNotFoundError:
                await asyncio.sleep(CONNECT_RETRY_S)
        try:
            writer.write(json.dumps({"op": op, "name": name}).encode() + b"\n")
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise ValueError("the connection closed without an answer")
        answer = json.loads(line)
        return int(answer["status"]), answer["body"]


def combined(outcomes: dict[int, Outcome]) -> Outcome:
    """The workers' common outcome, or a 500 naming each worker's (worker index -> outcome)."""
    distinct = {json.dumps(outcome, sort_keys=True) for outcome in outcomes.values()}
    if len(distinct) == 1:
        return next(iter(outcomes.values()))
    said = "; ".join(f"worker {index}: {status} {_gist(body)}" for index, (status, body) in sorted(outcomes.items()))
    message = f"the workers did not all do the same: {said}"
    logger.error(message)
    return 500, error_object(message)


def _gist(body: dict) -> str:
    return str(body["error"]) if "error" in body else json.dumps(body, sort_keys=True)
