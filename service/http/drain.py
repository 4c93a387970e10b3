"""The server's side of the lossless drain: what happens to connections the listener holds on SIGTERM.

The connections' side (answer the request in hand with ``Connection: close``, serve what arrives on an
idle one for ``CTR_DRAIN_IDLE_S``) is the protocol's (http/protocol.py). What the server adds:

- **No client is told to reconnect while the port still listens.** A client answered ``Connection:
  close`` connects again at once; a port that no longer listens refuses it (its request was never
  sent), but one that does queues it, and closing the last listener resets what waits in its queue: a
  request sent and never answered. uvicorn closes its listener before it tells its connections, which
  is enough for one process; with several workers the listener is one socket that every worker holds,
  and it listens until the last of them closes it, so the first to drain sent its clients into the
  queue of another about to close (5 of 40 drains under 64 clients lost requests). So each worker
  closes its share of the listener, then waits until the socket has closed in every process (the
  kernel's table of sockets, /proc/net/tcp, no longer lists it), serving its connections as usual
  meanwhile, and only then tells them to drain.
- **Nothing left in the queue.** Just before closing, the server accepts whatever the kernel queued, in
  the same step as the close (what reaches the queue in the microseconds between is still reset), and
  serves it like the others.
- **Every stop signal, whenever it came.** uvicorn's handlers take SIGTERM and SIGINT; the server adds a
  terminal's SIGHUP (it killed a process of one at once, its requests undrained; one started ignoring it,
  ``nohup``, still does), and unblocks the stop signals a worker is started with blocked (workers.py: one
  that came while it loaded waits for these handlers instead of being lost).
- **Connections accepted but not yet made.** The loop makes a connection (``connection_made``) a turn or
  two after it accepted it, and uvicorn tells only the connections made; one made after that served
  keep-alive until the drain time-out and was then closed under a request. The protocol class learns
  of the drain first (``server_draining``), and a connection made after that drains from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import uvicorn

logger = logging.getLogger(__name__)

LISTENER_GONE_WITHIN_S = 5.0  # the longest a worker waits for the others to close the shared listener
SOCKET_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose shutdown leaves nobody waiting in its listener and tells every connection."""

    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.making: set[asyncio.Task] = set()  # connections accepted by the shutdown, being made
        self.on_drain = on_drain  # told as the shutdown begins (readiness answers 503 from then on)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            if threading.current_thread() is not threading.main_thread():  # as uvicorn: signals are the main's
                yield
                return
            hang_up = signal.getsignal(signal.SIGHUP)  # None: a handler not set from Python, left be
            caught = hang_up not in (signal.SIG_IGN, None)  # under nohup, or in a worker (its supervisor's)
            if caught:
                signal.signal(signal.SIGHUP, self.handle_exit)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
            try:
                yield
            finally:  # restored before uvicorn raises the captured signals again: SIGHUP ends the process too
                if caught:
                    signal.signal(signal.SIGHUP, hang_up)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_drain is not None:
            self.on_drain()
        listeners = {_inode(listening) for server in self.servers for listening in server.sockets or ()}
        waiting = [connection for server in self.servers for connection in _accept_waiting(server)]
        for server in self.servers:  # in the same step: what reaches the queue from here on is reset
            server.close()
        for listening in sockets or ():
            listening.close()
        self._make(waiting)
        await self._until_closed_everywhere(listeners)
        self.config.http_protocol_class.server_draining = True
        await super().shutdown(sockets)  # tells the connections made; the protocol, those made later

    def _make(self, accepted: list[socket.socket]) -> None:
        """Connections for what the shutdown accepted, made on the loop's next turns."""
        if not accepted:
            return
        logger.info("drain: %d connection(s) waited to be accepted: served", len(accepted))
        loop = asyncio.get_running_loop()
        make = partial(
            self.config.http_protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        for connection in accepted:
            making = loop.create_task(loop.connect_accepted_socket(make, connection))
            self.making.add(making)
            making.add_done_callback(self.making.discard)

    async def _until_closed_everywhere(self, inodes: set[int], within_s: float = LISTENER_GONE_WITHIN_S) -> None:
        """Return once no process holds these listening sockets (at once for one process), after ``within_s``,
        or on a second signal (uvicorn's ``force_exit``)."""
        deadline = time.monotonic() + within_s
        while inodes & listening_inodes() and not self.force_exit:
            if time.monotonic() > deadline:
                logger.warning("drain: the listener is still open in another process after %.0f s: draining", within_s)
                return
            await asyncio.sleep(0.005)


def _inode(listening: object) -> int:
    return os.fstat(listening.fileno()).st_ino  # type: ignore[attr-defined]


def _accept_waiting(server: asyncio.AbstractServer) -> list[socket.socket]:
    """The connections the kernel holds for ``server``'s listening sockets, accepted without blocking."""
    accepted = []
    for listening in server.sockets or ():
        with socket.socket(fileno=os.dup(listening.fileno())) as listener:  # (asyncio and uvloop give wrappers)
            listener.setblocking(False)
            while True:
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    break
                except OSError as error:  # out of descriptors, say: what is left is reset as before
                    logger.warning("drain: accepting the waiting connections stopped: %s", error)
                    break
                connection.setblocking(False)
                accepted.append(connection)
    return accepted


def listening_inodes() -> set[int]:
    """The inodes of the TCP sockets listening in this network namespace (Linux's socket tables)."""
    inodes = set()
    for table in SOCKET_TABLES:
        try:
            with open(table, encoding="utf-8") as lines:
                next(lines, None)
                for line in lines:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                        inodes.add(int(fields[9]))
        except OSError:  # no IPv6, or no /proc: nothing to wait for
            continue
    return inodes
