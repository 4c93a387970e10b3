"""Running the service under uvicorn (``ctr serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from types import FrameType

import uvicorn
from uvicorn.server import STARTUP_FAILURE

from common.utc_logging import stderr_handler
from service.app import SHED_PATHS, create_app, grpc_starter
from service.binding import ListenRefused, bound_sockets, refused_listening, said_bound
from service.cpus import CpuLimit, affinity_cpus, cpu_limit, threads_under_limit, usable_cpus
from service.effective_settings import log_effective_settings
from service.http.accept_failures import AcceptFailures
from service.http.drain import DrainingServer
from service.http.overload import QueueWatch
from service.http.protocol import DirectRoutes, guarded_protocol, keep_alive_hint, said_by_protocol
from service.http.shed_log import ShedLog
from service.log_format import ACCESS_LOGGER, JsonFormatter, access_line_fields
from service.models.snapshot import NothingWouldLoad, RoleConflict
from service.score.endpoint import PATH as SCORE_PATH
from service.settings import Settings, warn_of_unknown_variables
from service.sibling_admin import SiblingAdmin
from service.sibling_metrics import SiblingMetrics
from service.workers import supervise, warn_if_more_than_cpus

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s"
ACCEPT_FAILURES = AcceptFailures()  # one per process: configure_logging may run again (tests), adding it once


def configure_logging(level: int, structured: bool = False, workers: int = 1) -> None:
    """One root handler; uvicorn's loggers propagate to it, so every line has the same format (with the
    process id when several workers write to it); Python warnings too (they went to stderr as two bare
    lines, which a JSON log's reader cannot parse); access lines end with the request's X-Request-ID."""
    text_format = LOG_FORMAT if workers == 1 else WORKER_LOG_FORMAT
    logging.basicConfig(level=level, handlers=[stderr_handler(text_format)], force=True)
    logging.captureWarnings(True)
    if structured:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    logging.getLogger("uvicorn.error").addFilter(said_refusal_traceback)
    logging.getLogger("uvicorn.error").addFilter(said_by_protocol)
    logging.getLogger(ACCESS_LOGGER).addFilter(access_line_fields)
    logging.getLogger("asyncio").addFilter(ACCEPT_FAILURES)


def said_refusal_traceback(record: logging.LogRecord) -> bool:
    """False for uvicorn's copy of the traceback of a start-up the service refused on purpose (role models
    that cannot serve together: snapshot.role_conflict; a role model nothing would load: NothingWouldLoad;
    a gRPC port taken since the start's check: ListenRefused): the model manager, or the gRPC server, has
    said why in one line; 45 lines repeated it (65 for the gRPC port)."""
    message = record.getMessage()
    last = message.rstrip().rsplit("\n", 1)[-1]
    refused = tuple(f"{kind.__module__}.{kind.__name__}:" for kind in (RoleConflict, NothingWouldLoad, ListenRefused))
    return not (message.startswith("Traceback") and last.startswith(refused))


def serve(settings: Settings | None = None, options: Mapping[str, str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, on the host and port the settings name: in this process, or with
    ``workers`` > 1 in that many worker processes under this one (workers.py). The start says the settings
    that differ from the defaults, once (effective_settings.py); ``options``: those ``ctr serve`` was given
    as options, by setting (``{"port": "--port"}``), so the line names them.

    Connections get header and body read time-outs, and inference requests are refused at their
    headers while requests stand waiting longer than ``shed_wait_ms`` to be read (http/protocol.py,
    http/overload.py; counted as 503 responses in ``/metrics``). On the signal the server stops
    accepting, answers the requests in hand with ``Connection: close``, serves what arrives on idle
    connections for ``drain_idle_s`` before closing them, and waits up to ``drain_timeout_s`` for the
    requests in flight; then the lifespan drains every batcher's queue, and the process ends by the signal
    uvicorn raises again (status 143 for SIGTERM; 0 with several workers).
    ``POST /v1/score`` with a small body is answered by the connection itself, without ASGI (the
    protocol's direct routes).
    """
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level_number, settings.log_format == "json", settings.workers)
    warn_of_unknown_variables(os.environ)
    log_effective_settings(settings, options or {}, os.environ)
    if settings.grpc_port:
        try:
            grpc_starter()  # said in one line here; from the lifespan it came at the end of a 61-line traceback
        except RuntimeError as error:
            logger.error("%s", error)
            sys.exit(STARTUP_FAILURE)
    raise_open_files_limit()
    limit = cpu_limit()  # read once: the workers' warning and ONNX Runtime's threads
    settings = fitted_to_cpu_limit(settings, limit)
    if settings.workers > 1:
        warn_if_more_than_cpus(settings.workers, usable_cpus(limit))
        sys.exit(supervise(settings, run))
    sockets = bound_sockets(settings.host, settings.port, settings.grpc_port)
    if sockets is None:
        sys.exit(STARTUP_FAILURE)
    said_bound(sockets)
    run(settings, sockets)


def run(settings: Settings, sockets: list[socket.socket] | None = None, siblings: SiblingMetrics | None = None) -> None:
    """The service in this process, on ``sockets`` (bound before the models load: binding.py, by this
    process or by the supervisor of several workers, which share them) or on sockets uvicorn binds to the
    settings' host and port; ``siblings``: a worker's side of the metrics (and admin operations) the workers share."""
    app = create_app(settings, tune_gc=True)
    app.state.siblings = siblings
    if siblings is not None:  # admin loads and unloads, and what polling finds, reach every worker
        app.state.sibling_admin = SiblingAdmin(siblings.directory, siblings.index, settings.workers)
    metrics = app.state.metrics
    shed_log = ShedLog(settings.shed_wait_ms)
    failure_lines = app.state.failure_lines

    def count_refusal() -> None:
        metrics.responses[503] += 1
        metrics.shed += 1
        shed_log.refused()

    def count_answer(status: int) -> None:  # the protocol's own 408s, 400s and 500s
        metrics.responses[status] += 1

    shedding = settings.shed_wait_ms > 0
    app.queue_watch = QueueWatch(settings.shed_wait_ms / 1000, settings.shed_interval_ms / 1000) if shedding else None
    hint = keep_alive_hint(settings.keep_alive_s)
    app.direct_routes = DirectRoutes({SCORE_PATH: app.score_endpoint.direct})
    protocol = guarded_protocol(
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.drain_idle_s,
        settings.keep_alive_s + settings.keep_alive_grace_s,
        watch=app.queue_watch,
        shed_paths=SHED_PATHS,
        retry_after_s=settings.retry_after_s,
        on_refused=count_refusal,
        on_answered=count_answer,
        keep_alive_headers=hint,
        direct=app.direct_routes,
        failure_lines=failure_lines,
    )
    app.state.holdings.connections = protocol.read_deadlines.connections
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol,
        loop=settings.event_loop,
        log_config=None,
        log_level=settings.log_level.lower(),
        # the access logger stays wired: with CTR_ACCESS_LOG=false the protocol writes no line of a request
        # answered well, but those of failures (http/failure_lines.py); uvicorn's False cut it off
        access_log=True,
        # the seconds as given: uvicorn hands them to asyncio.timeout, which takes a float (its Config says
        # int); int() made 0.9 s a 0 that cancelled every request in flight at the signal
        timeout_graceful_shutdown=settings.drain_timeout_s,  # type: ignore[arg-type]
        timeout_keep_alive=settings.keep_alive_s + settings.keep_alive_grace_s,
        headers=hint,
        # the access line's client is the connection's peer on every route, as on the direct one: uvicorn's
        # default took X-Forwarded-For from any loopback client (a sidecar, or anyone on the host could
        # write an address of its choosing into the log of the ASGI routes)
        proxy_headers=False,
    )
    server = ServiceServer(
        config, on_drain=lambda: setattr(app.state, "draining", True), loading=lambda: app.state.loading_at_start
    )
    with suppress(KeyboardInterrupt):  # as uvicorn.run: SIGINT, raised again once the server has drained
        server.run(sockets=sockets)
    shed_log.flush()  # the refusals of the last interval, whose line the closed loop will not say
    failure_lines.flush()  # and the failures' lines held back in the last second
    if not server.started:  # as uvicorn.run: the lifespan or the bind failed
        sys.exit(STARTUP_FAILURE)


class ServiceServer(DrainingServer):
    """The draining server, whose listen on the sockets bound before the models loaded (binding.py) is
    refused in one line naming the address, and exit status 3 (``STARTUP_FAILURE``), as a port taken at the
    bind is: its port can be taken in between (binding.py). The lifespan is shut down first, as uvicorn does
    where its own bind fails (the batchers, a gRPC server started). It ended in a 196-line traceback, exit 1.

    A stop signal while the models load at start (``loading``) ends the process at once: nothing listens
    yet, so nothing is in flight to drain. uvicorn looked at its signal only once the lifespan had started:
    every model was loaded and warmed up, "ready" said, then the service stopped (5 s after SIGTERM for the
    default models with a large warm-up), and a load stuck on the repository's storage held it for as long
    (a rolling deploy's pod waited out its grace period for SIGKILL)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_drain: Callable[[], None] | None = None,
        loading: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(config, on_drain)
        self.loading = loading
        self.found: dict[int, object] = {}  # each stop signal's handler before the server's: how a stop ends

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        self.found = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        with super().capture_signals():
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self.loading():
            self.stop_while_loading(sig)

    def stop_while_loading(self, sig: int) -> None:
        """End the process as its drain would have: by the signal where nothing else handled it (143 for
        SIGTERM), exit 0 in a worker, whose handler takes the signal (workers.py). A load's thread cannot be
        stopped, and the interpreter's exit would wait for it: the process ends here, its log flushed."""
        logger.warning(
            "%s while the models load at start: stopping without serving (nothing listens yet)",
            signal.Signals(sig).name,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        if self.found.get(sig) in (signal.SIG_DFL, signal.default_int_handler, None):
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)
        os._exit(0)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's run, with asyncio's debug mode as the interpreter asks for it (``-X dev``, a non-empty
        ``PYTHONASYNCIODEBUG``): on Python 3.11 uvicorn's copy of 3.12's ``asyncio.run`` gave its runner
        ``debug=False``, which turned it off; a runner given none leaves it to the loop, which reads both
        (asyncio's and uvloop's alike), as ``asyncio.run`` does."""
        with asyncio.Runner(loop_factory=self.config.get_loop_factory()) as runner:
            runner.run(self.serve(sockets=sockets))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except OSError as error:
            if sockets is None:  # uvicorn bound the host and port itself, and says its own failure
                raise
            refused_listening(sockets, error)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)


def fitted_to_cpu_limit(settings: Settings, limit: CpuLimit | None) -> Settings:
    """ONNX Runtime's threads per operator sized to a container's CPU limit where it allows fewer CPUs than
    the process sees (cpus.py), unless ``CTR_INTRA_OP_THREADS`` chose them: ONNX Runtime's default pool
    takes a thread a core of the node, whatever the container's share of them. Threads chosen beyond the
    CPUs the process may use are warned of, with a limit or without (``CTR_INTRA_OP_THREADS=400`` started
    1,201 threads on 2 cores without a word)."""
    if settings.intra_op_threads:
        warn_if_threads_exceed_cpus(settings.intra_op_threads, settings.workers, limit)
        return settings
    threads = threads_under_limit(limit, settings.workers)
    if limit is None or threads is None:
        return settings
    logger.info(
        "a CPU limit of %g CPUs (%s) on %d CPUs: ONNX Runtime runs %d thread(s) per operator in each of %d "
        "worker(s) (CTR_INTRA_OP_THREADS sets them)",
        limit.cpus,
        limit.source,
        affinity_cpus(),
        threads,
        settings.workers,
    )
    return settings.model_copy(update={"intra_op_threads": threads})


def warn_if_threads_exceed_cpus(threads: int, workers: int, limit: CpuLimit | None) -> None:
    """A warning when ``threads`` per operator in each of ``workers`` outnumber the CPUs this process may use
    (``usable_cpus``: the affinity mask's, fewer under a CPU limit, which is then named): they take turns on
    the cores, each run waiting for the slowest of its threads."""
    if threads * workers <= usable_cpus(limit):
        return
    if limit is not None and limit.whole_cpus < affinity_cpus():
        logger.warning(
            "CTR_INTRA_OP_THREADS=%d in each of %d worker(s) is more than the CPU limit of %g CPUs (%s): "
            "the threads wait for the quota in turn",
            threads,
            workers,
            limit.cpus,
            limit.source,
        )
        return
    logger.warning(
        "CTR_INTRA_OP_THREADS=%d in each of %d worker(s) is more than the %d CPUs this process may use: the "
        "threads take turns on them; at most one thread a CPU, all workers together, is the rule",
        threads,
        workers,
        affinity_cpus(),
    )


def raise_open_files_limit() -> None:
    """The soft limit on open files up to the hard one: each connection is a file descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        logger.info("open files limit raised from %d to %d", soft, target)
