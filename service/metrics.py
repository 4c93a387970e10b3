"""Prometheus metrics in the spirit of Triton's ``nv_inference_*`` series, in the text exposition format.

Per model version: requests that succeeded and failed (by reason), inference count (items) and
execution count (batches), cumulative queue and compute time, pending requests, a batch-size histogram
and a request-duration histogram, runs and compute time per exact batch size and the time of the last
run (for the V2 statistics extension, v2/statistics.py); per status code, the HTTP and gRPC responses
(the protocol's own answers included: 408 read time-outs, 400 unparsable requests, 503 refusals at the
door, which are also counted apart); per model version, the sum of each probability its graph output (over
the inference count, its mean: a version that verifies but scores differently from the one before it shows
there, beside the mean each output had on the validation rows at training, from its model.json); per model,
the versions refused at a load, and whether polling is failing to load it; the execution provider
each version runs on; and the processes' CPU, memory and descriptors (process_stats.py). Counters are
plain integers updated on the event loop thread, so taking a sample costs no lock; ``/metrics`` renders
them on demand. Every failure reason of a model version is rendered from 0, so that a ratio of failures
has a value before the first one.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.output_means import PROBABILITY_OUTPUTS
from service.http.failure_lines import FailureLines
from service.http.holdings import lines as holding_lines
from service.http.scope_keys import ANSWERED_BY_PROTOCOL
from service.log_format import REQUEST_SCOPE, note_error_body
from service.process_stats import lines as process_lines

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
# from 100 µs: with 0.5 ms the lowest, 58 of 82 requests of 3 and 100 candidates to an idle default esmm (2 cores)
# fell in it, so a median that doubled below 0.5 ms went unseen
DURATION_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
PREFIX = "ctr"
# the reasons a batcher fails a request for (batching/batcher.py): each rendered, 0 until it happens
FAILURE_REASONS = ("cancelled", "deadline", "error", "overloaded", "queue_full")
# graph outputs that are probabilities: each version's sum of each, so that its mean served value can be watched
# (an embedding's sum would say nothing, nor be a counter)
SUMMED_OUTPUTS = PROBABILITY_OUTPUTS
# ctr_model_info's labels after model and version: the execution provider in use, and the sha256 of the version's
# model.onnx, which names it on every machine (a version number is per repository: "esmm v1" differs on each)
MODEL_INFO_LABELS = ("provider", "sha256")


class Histogram:
    """Cumulative-bucket histogram with a sum and a count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def to_list(self) -> list:
        return [self.counts, self.total, self.count]

    def add(self, saved: list) -> None:
        """Another histogram's ``to_list()`` (the same bounds) added to this one."""
        counts, total, count = saved
        self.counts = [mine + theirs for mine, theirs in zip(self.counts, counts, strict=True)]
        self.total += total
        self.count += count

    def lines(self, name: str, labels: str) -> Iterator[str]:
        """The exposition's lines: each ``le`` as a float (``le="1.0"``, as Prometheus 3 stores it and the
        official client writes it: ``le="1"`` matched no stored series there), the sum in full (``.9g``
        moved a batch-size sum past 1e9 in steps of 10)."""
        cumulative = 0
        for bound, count in zip((*map(float, self.bounds), "+Inf"), self.counts, strict=True):
            cumulative += count
            yield f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}'
        yield f"{name}_sum{{{labels}}} {float(self.total)!r}"
        yield f"{name}_count{{{labels}}} {self.count}"


def summed(values: np.ndarray) -> float:
    """The values' sum in float64: a small batch's as Python floats, a larger one's by numpy, whose reduction
    costs ~1.2 µs a call whatever the size (a 2-row batch's three outputs took 4.7 µs that way, ~3 % of a
    1-candidate request's CPU in `ctr bench ab`; 1.5 µs as Python floats). NaN when a value is NaN or
    infinite (float64 cannot overflow on a sum of float32 values): the batcher refuses such a run by it."""
    if values.size <= SMALL_SUM:
        try:
            return math.fsum(values.ravel().tolist())
        except ValueError:  # fsum refuses inf + -inf
            return math.nan
    return float(values.sum(dtype=np.float64))


def run_output_sums(outputs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """A run's sum of each probability output it gave (``SUMMED_OUTPUTS``), for ``ModelStats.executed``."""
    sums = {}
    for name in SUMMED_OUTPUTS:  # a loop: a comprehension's frame cost a fifth more on a 1-row run
        values = outputs.get(name)
        if values is not None:
            sums[name] = summed(values)
    return sums


SMALL_SUM = 32  # values summed as Python floats up to this many (past ~50, numpy's reduction is the cheaper)


@dataclass
class ModelStats:
    """The counters of one model version (the batcher writes them)."""

    successes: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> count
    items: int = 0  # inference count: rows run
    executions: int = 0  # execution count: model runs (batches)
    # each request answered: its wait from enqueue until the run of its first rows began, summed (Triton's
    # cumulative queue time); over ``successes``, the mean wait
    queue_s: float = 0.0
    compute_s: float = 0.0  # cumulative time in model runs
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_SIZE_BUCKETS))
    durations: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS_S))
    by_batch_size: dict[int, list[float]] = field(default_factory=dict)  # items -> [executions, compute_s]
    last_inference_ms: int = 0  # wall clock (ms since the epoch) of the last model run; 0: none yet
    # numeric feature -> request values clipped to the training range (the encoders count into it)
    clipped: Counter = field(default_factory=Counter)
    # probability output -> its values summed over the items run (float64): over ``items``, the mean served
    output_sums: dict[str, float] = field(default_factory=dict)

    def success(self, duration_s: float, queue_s: float) -> None:
        """A request answered with outputs, ``duration_s`` after it was queued, ``queue_s`` of it waiting."""
        self.successes += 1
        self.durations.observe(duration_s)
        self.queue_s += queue_s

    def failure(self, reason: str) -> None:
        self.failures[reason] += 1

    def executed(self, items: int, compute_s: float, sums: Mapping[str, float] | None = None) -> None:
        """A model run of ``items`` rows, ``compute_s`` long, whose probability outputs summed to ``sums``
        (``run_output_sums``)."""
        if sums:
            totals = self.output_sums
            for name, total in sums.items():
                totals[name] = totals.get(name, 0.0) + total
        self.items += items
        self.executions += 1
        self.compute_s += compute_s
        self.batch_sizes.observe(items)
        exact = self.by_batch_size.get(items)
        if exact is None:
            self.by_batch_size[items] = [1, compute_s]
        else:
            exact[0] += 1
            exact[1] += compute_s
        self.last_inference_ms = time.time_ns() // 1_000_000

    def to_dict(self) -> dict:
        plain = {name: getattr(self, name) for name in _PLAIN_STATS}
        return plain | {
            "last_inference_ms": self.last_inference_ms,
            "failures": dict(self.failures),
            "batch_sizes": self.batch_sizes.to_list(),
            "durations": self.durations.to_list(),
            "by_batch_size": [[size, n, seconds] for size, (n, seconds) in self.by_batch_size.items()],
            "clipped": dict(self.clipped),
            "output_sums": dict(self.output_sums),
        }

    def add(self, saved: dict) -> None:
        """Another version's ``to_dict()`` (another process's counters of the same version) added."""
        for name in _PLAIN_STATS:
            setattr(self, name, getattr(self, name) + saved[name])
        self.last_inference_ms = max(self.last_inference_ms, saved["last_inference_ms"])
        self.failures.update(saved["failures"])
        self.clipped.update(saved["clipped"])
        for name, total in saved.get("output_sums", {}).items():  # (absent from a worker of an earlier release)
            self.output_sums[name] = self.output_sums.get(name, 0.0) + total
        self.batch_sizes.add(saved["batch_sizes"])
        self.durations.add(saved["durations"])
        for size, n, seconds in saved["by_batch_size"]:
            exact = self.by_batch_size.setdefault(size, [0, 0.0])
            exact[0] += n
            exact[1] += seconds


_PLAIN_STATS = ("successes", "items", "executions", "queue_s", "compute_s")


# how long a version forgotten stays named to the other worker processes: past the longest another may still
# serve it (an admin load everywhere answers within 120 s: sibling_admin.py ANSWER_WITHIN_S), then drain it
# (a retired batcher's 30 s), and their files' age (1 s). Workers left apart longer (a load that answered 500
# naming each one's outcome) show the version again with the others' part: one counter reset
FORGOTTEN_KEEP_S = 180.0


def _fresh(forgotten_at: float) -> bool:
    return time.monotonic() - forgotten_at <= FORGOTTEN_KEEP_S


class Metrics:
    """Every served model version's stats (a version's go once it is no longer served and its batcher has
    drained), HTTP status counts, and each version's execution provider and model.onnx sha256."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, int], ModelStats] = {}
        # (name, version) -> the labels ctr_model_info gives it besides those two (MODEL_INFO_LABELS)
        self.info: dict[tuple[str, int], dict[str, str]] = {}
        # (name, version) -> output -> its mean on the validation rows at training (common/output_means.py): the
        # served mean's baseline, read once at a load; none for a model.json exported before it was recorded
        self.training_means: dict[tuple[str, int], dict[str, float]] = {}
        self.responses: Counter = Counter()  # HTTP status code -> count
        self.grpc_responses: Counter = Counter()  # gRPC status code name (OK, INVALID_ARGUMENT, ...) -> count
        self.shed = 0  # requests refused at the door (503 at their headers: http/overload.py)
        self.refusals: Counter = Counter()  # model name -> versions refused at a load (by each process)
        # model name -> whether its last poll left it short of what its folder and settings select (its settings
        # unreadable, its load failed, an error): set by the one process that polls, after each poll
        self.polls_failing: dict[str, bool] = {}
        # versions no longer served whose series went (``forget``) -> when: named to the other worker processes
        # for FORGOTTEN_KEEP_S, so that their sum leaves them out at once (sibling_metrics.py)
        self.forgotten: dict[tuple[str, int], float] = {}

    def model(
        self,
        name: str,
        version: int,
        info: dict[str, str] | None = None,
        training_means: dict[str, float] | None = None,
    ) -> ModelStats:
        """The version's stats; ``info``: its ``ctr_model_info`` labels (MODEL_INFO_LABELS), where known;
        ``training_means``: its outputs' means at training (``ctr_model_training_output_mean``), where recorded."""
        key = (name, version)
        if info:
            self.info[key] = info
        if training_means:
            self.training_means[key] = training_means
        stats = self.models.get(key)
        if stats is None:
            stats = self.models[key] = ModelStats()
        return stats

    def forget(self, key: tuple[str, int]) -> None:
        """A version no longer served: its series go (models/manager.py, once its batcher has drained), and
        with several worker processes, from their sum at once: left there until every process had forgotten
        it, the sum fell first (the forgetting processes' part gone, the others' not), which Prometheus reads
        as a counter reset, counting the rest again as new."""
        self._drop(key)
        self.forgotten = {k: at for k, at in self.forgotten.items() if _fresh(at)}
        self.forgotten[key] = time.monotonic()

    def restart(self, key: tuple[str, int]) -> None:
        """A version served anew (its first load, or again: a rollback): its series from 0, not forgotten."""
        self._drop(key)
        self.forgotten.pop(key, None)

    def without_forgotten(self) -> None:
        """The series of every version named forgotten (by this process or, summed, another) left out."""
        for key in self.forgotten:
            self._drop(key)

    def _drop(self, key: tuple[str, int]) -> None:
        self.models.pop(key, None)
        self.info.pop(key, None)
        self.training_means.pop(key, None)

    def to_dict(self) -> dict:
        """Every counter, as JSON can hold it (``add`` takes it back)."""
        return {
            "models": [[name, version, stats.to_dict()] for (name, version), stats in self.models.items()],
            "info": [[name, version, info] for (name, version), info in self.info.items()],
            "training_means": [[name, version, means] for (name, version), means in self.training_means.items()],
            "responses": [[code, n] for code, n in self.responses.items()],
            "grpc_responses": [[code, n] for code, n in self.grpc_responses.items()],
            "shed": self.shed,
            "refusals": [[name, n] for name, n in self.refusals.items()],
            "polls_failing": [[name, failing] for name, failing in self.polls_failing.items()],
            "forgotten": [[name, version] for (name, version), at in self.forgotten.items() if _fresh(at)],
        }

    def add(self, saved: dict) -> None:
        """Another process's ``to_dict()`` added to these counters (CTR_WORKERS > 1: sibling_metrics.py)."""
        for name, version, stats in saved["models"]:
            self.model(name, version).add(stats)
        for name, version, info in saved["info"]:
            self.info.setdefault((name, version), info)
        for name, version, means in saved.get("training_means", []):  # (absent from a worker of an earlier release)
            self.training_means.setdefault((name, version), means)
        self.responses.update(dict(saved["responses"]))
        self.grpc_responses.update(dict(saved["grpc_responses"]))
        self.shed += saved["shed"]
        self.refusals.update(dict(saved["refusals"]))
        for name, failing in saved.get("polls_failing", []):  # (absent from a worker of an earlier release)
            self.polls_failing[name] = self.polls_failing.get(name, False) or failing
        for name, version in saved.get("forgotten", []):  # (absent from a worker of an earlier release)
            self.forgotten.setdefault((name, version), time.monotonic())

    def render(
        self, pending: dict[tuple[str, int], int], served: Iterable[tuple[str, int]], process: dict[str, float]
    ) -> str:
        """The exposition text; ``pending`` is each live batcher's pending requests, ``served`` every (name,
        version) served now (``ServingModels.served``: each has its ``ctr_model_info`` and training means, those
        a worker has forgotten left out), ``process`` the processes' figures (process_stats.py)."""
        p = PREFIX
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {p}_{name} {text}")
            out.append(f"# TYPE {p}_{name} {kind}")

        def labels(key: tuple[str, int]) -> str:
            return f'model="{key[0]}",version="{key[1]}"'

        keys = sorted(self.models)
        shown = {k: labels(k) for k in keys}  # formed once per version, not once per family

        def per_version(name: str, kind: str, text: str, attribute: str, spec: str = "") -> None:
            """A family of one series per version: its stats' ``attribute``, formatted by ``spec``."""
            family(name, kind, text)
            out.extend(f"{p}_{name}{{{shown[k]}}} {getattr(self.models[k], attribute):{spec}}" for k in keys)

        per_version(
            "inference_request_success_total", "counter", "Inference requests answered with outputs.", "successes"
        )
        family("inference_request_failure_total", "counter", "Inference requests that failed, by reason.")
        for k in keys:
            failures = self.models[k].failures
            for reason in sorted(set(FAILURE_REASONS) | set(failures)):
                out.append(f'{p}_inference_request_failure_total{{{shown[k]},reason="{reason}"}} {failures[reason]}')
        per_version("inference_count_total", "counter", "Items (candidates) run through the model.", "items")
        per_version("inference_exec_count_total", "counter", "Model executions (batches).", "executions")
        queued = "Time requests answered waited for their run, summed over requests."
        per_version("inference_queue_duration_seconds_total", "counter", queued, "queue_s", ".9g")
        computed = "Time spent in model executions."
        per_version("inference_compute_duration_seconds_total", "counter", computed, "compute_s", ".9g")
        family("inference_pending_request_count", "gauge", "Requests waiting in or running through a batcher.")
        out.extend(f"{p}_inference_pending_request_count{{{labels(k)}}} {n}" for k, n in sorted(pending.items()))
        family("inference_batch_size", "histogram", "Items per model execution.")
        for k in keys:
            out.extend(self.models[k].batch_sizes.lines(f"{p}_inference_batch_size", shown[k]))
        family("inference_request_duration_seconds", "histogram", "Queue plus compute time of successful requests.")
        for k in keys:
            out.extend(self.models[k].durations.lines(f"{p}_inference_request_duration_seconds", shown[k]))
        family(
            "feature_values_clipped_total",
            "counter",
            "Rows whose numeric feature value lay outside the model's training range, clipped to it (a unit mistake).",
        )
        for k in keys:
            clipped = self.models[k].clipped
            out.extend(
                f'{p}_feature_values_clipped_total{{{shown[k]},feature="{f}"}} {clipped[f]}' for f in sorted(clipped)
            )
        family(
            "inference_output_sum_total",
            "counter",
            "Each probability the graph output, summed over the items run: over inference_count_total, its mean.",
        )
        for k in keys:
            sums = self.models[k].output_sums
            out.extend(f'{p}_inference_output_sum_total{{{shown[k]},output="{o}"}} {sums[o]!r}' for o in sorted(sums))
        family(
            "model_info",
            "gauge",
            "1 for each model version being served, with its execution provider and its model.onnx sha256.",
        )
        live = sorted(set(served) - set(self.forgotten))  # one a worker has forgotten: all its series out
        for k in live:
            info = self.info.get(k, {})
            named = ",".join(f'{label}="{info.get(label, "")}"' for label in MODEL_INFO_LABELS)
            out.append(f"{p}_model_info{{{labels(k)},{named}}} 1")
        family(
            "model_training_output_mean",
            "gauge",
            "Each probability's mean on validation rows at training: the served mean's baseline, not the logged CTR.",
        )
        for k in live:
            means = self.training_means.get(k, {})
            out.extend(
                f'{p}_model_training_output_mean{{{labels(k)},output="{o}"}} {means[o]!r}' for o in sorted(means)
            )
        family("http_responses_total", "counter", "HTTP responses by status code.")
        out.extend(f'{p}_http_responses_total{{code="{code}"}} {n}' for code, n in sorted(self.responses.items()))
        family("grpc_responses_total", "counter", "gRPC responses (KServe V2 gRPC service) by status code.")
        out.extend(f'{p}_grpc_responses_total{{code="{c}"}} {n}' for c, n in sorted(self.grpc_responses.items()))
        family(
            "http_requests_shed_total",
            "counter",
            "Requests refused at the door with 503 while requests waited too long to be read (also in the 503s).",
        )
        out.append(f"{p}_http_requests_shed_total {self.shed}")
        family(
            "model_version_refusals_total",
            "counter",
            "Model versions refused at a load (checksum, graph, ...), by every worker: once per refusal per worker.",
        )
        out.extend(f'{p}_model_version_refusals_total{{model="{m}"}} {n}' for m, n in sorted(self.refusals.items()))
        family(
            "model_poll_failing",
            "gauge",
            "1 while polling cannot serve the versions a model's folder and settings select, or the folder no "
            "longer holds the versions served (the log says why).",
        )
        polls = sorted(self.polls_failing.items())
        out.extend(f'{p}_model_poll_failing{{model="{m}"}} {int(failing)}' for m, failing in polls)
        out.extend(holding_lines(process, p))
        out.extend(process_lines(process))
        return "\n".join(out) + "\n"


class StatusCounter:
    """Pure ASGI middleware counting HTTP responses by status code (cheaper than BaseHTTPMiddleware). An
    error's start is held until its body comes, whose message goes on the scope for the access line that
    the server logs as the start is sent (log_format.note_error_body); with the access log off, a failure's
    line is written here (http/failure_lines.py)."""

    def __init__(self, app: ASGIApp, counts: Counter, failure_lines: FailureLines) -> None:
        self.app = app
        self.counts = counts
        self.failure_lines = failure_lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if ANSWERED_BY_PROTOCOL not in scope:
                    self.counts[message["status"]] += 1
                if message["status"] >= 400:
                    held.append(message)
                    return
            elif held and message["type"] == "http.response.body":
                # on the scope the access line reads: the connection's (a HEAD is answered on a copy, as GET)
                line_scope = REQUEST_SCOPE.get() or scope
                note_error_body(line_scope, message.get("body", b""))
                start = held.pop()
                self.failure_lines.failed(line_scope, start["status"])
                await send(start)
            await send(message)

        await self.app(scope, receive, counting_send)
        if held:  # an error's start whose body never came: sent, as it was before
            await send(held.pop())
