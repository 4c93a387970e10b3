"""An HTTP client that opens a new connection for every request: requests spread over a service's worker
processes, since the kernel hands each new connection on the shared port to one of them (service/workers.py).

``httpx.post`` and ``httpx.get`` gave a connection a call by building a client a call, and each client built
loads the system's CA certificates into an SSL context of its own, for plain HTTP too: 55 ms a call on the
2-core VM at load average 6 (``python -c 'import httpx, time; t = time.perf_counter(); [httpx.Client() for _ in
range(20)]; print((time.perf_counter() - t) / 20)'``), most of the time of the tests that send a few hundred."""

from __future__ import annotations

import httpx


def connection_each(timeout_s: float = 60.0) -> httpx.Client:
    """A client that keeps no connection alive, so that each request goes on a connection of its own; use it
    as a context manager (it closes what it holds)."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=timeout_s)
