"""Model management: load, reload and unload models while serving (Triton-style explicit control).

Every model the settings name is managed here: the role models and the retrieval model alike. A load reads the
model's ``[serving]`` settings and version policy, verifies each version it needs (loader.py) in a worker
thread, then swaps a new immutable ``ServingModels`` snapshot into ``app.state.models`` in one assignment.
Requests already holding the old snapshot finish on it; the batchers of versions no longer served drain and
stop. A version that fails verification is refused with a log line, remembered with its reason and its files
(refusal.py; ``/v2/repository/index`` lists it while it is on disk; polling retries it once its files change, or
after a backoff when the storage failed a read), and the versions already served keep serving; a load that finds
nothing loadable changes nothing. Loads are serialised by a lock, so a reload requested while one runs waits for
it: polling and the start as long as it takes, an admin load or unload ``ADMIN_LOCK_WAIT_S`` at most
(ManagerBusy, a 503 naming the load under way: a read stalled on the repository's storage held the lock, and
every admin request hung with it). A load running past ``SLOW_LOAD_S`` is said. A model unloaded by an admin
stays unloaded until an admin loads it: polling leaves it alone (it reloaded it within a poll interval, undoing
the operator's unload).

Versions are immutable once published (they appear by an atomic rename), so a version already served
is kept as it is, with its warm session and batcher, unless its batching settings changed.

Nothing here touches the repository on the event loop: each read (a listing, a stat) is made in the worker thread
of the load or poll that needs it. A stat stalled on the storage (a FUSE or NFS mount) froze the loop and every route
with it, health checks included, and SIGTERM did nothing until the storage answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from copy import copy
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from anyio import to_thread
from starlette.concurrency import run_in_threadpool

from common.output_means import training_means
from common.plural import counted
from common.repository import validate_model_name, version_dir, versions
from service.batching.batcher import Batcher
from service.batching.policy import ServiceRate
from service.metrics import SUMMED_OUTPUTS, Metrics
from service.models.base import ModelLoadError, ServedModel
from service.models.config import ServingConfig, VersionPolicy, read_serving_config
from service.models.loader import load_versions
from service.models.refusal import Files, Refusal, changed_names, content_differs, version_files
from service.models.snapshot import NothingWouldLoad, RoleConflict, ServingModels, required_outputs
from service.settings import Settings

logger = logging.getLogger(__name__)

SLOW_LOAD_S = 30.0  # a load running longer is said, and again at each doubling: the storage may be stalled
ADMIN_LOCK_WAIT_S = 10.0  # the longest an admin load or unload waits for the one under way (a load takes seconds)
LOCK_LOOK_S = 0.1  # how often an admin operation waiting for the lock looks whether the service began to stop


@dataclass(frozen=True)
class LoadResult:
    """What a load did: the versions now served, and each version it refused with the reason."""

    name: str
    served: list[int]
    refused: dict[int, Refusal]


@dataclass(frozen=True)
class DiskRead:
    """(thread) What a load read of the repository: its settings and versions (``error``: why none loads), and
    what the swap needs of the disk afterwards, read in the same thread rather than on the event loop."""

    config: ServingConfig | None
    chosen: dict[int, ServedModel]
    error: ModelLoadError | None
    on_disk: set[int] | None  # the model's versions on disk after the load; None: its directory cannot be listed
    known: bool  # whether the name is a model's (``_known``)


class ManagerBusy(Exception):
    """An admin load or unload that could not take the manager's lock in time; its message names what holds it."""


class ModelManager:
    """Owns the served snapshot in ``state.models`` and every change to it."""

    def __init__(self, state: Any, settings: Settings, metrics: Metrics) -> None:
        self.state = state
        self.settings = settings
        self.metrics = metrics
        self.configs: dict[str, ServingConfig] = {}  # model name -> the settings its batchers run with
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()
        self._draining: dict[asyncio.Task, tuple[tuple[str, int], Batcher]] = {}  # each retiring batcher
        self._poller: asyncio.Task | None = None
        self._polls = True  # whether this process polls the repository (with poll_interval_s)
        self._poll_load: Callable[[str], Awaitable[object]] = self.poll_load  # how a version polling found loads
        self._unsettled: set[str] = set()  # models whose last load by polling failed (in any worker)
        self._unchecked: set[str] = set()  # models the poller of several workers has not yet loaded in them all
        self._unreadable: dict[str, str] = {}  # model -> why polling cannot read its serving settings (logged)
        self._gone: dict[str, str] = {}  # model -> how its served versions are gone from the disk (logged)
        self._held: set[str] = set()  # models unloaded on purpose: polling does not load them again
        # (name, version) served -> its files as they were when it was loaded: a version rewritten in place
        # since (cp over a published one) is noticed (``rewritten``), where it served on unseen, replicas
        # started later serving other scores under the same version
        self._files: dict[tuple[str, int], Files] = {}
        # (name, version) -> its files as last compared, the model compared against, and whether content differed;
        # filled by threadpool threads, pruned by the event loop (``_forget_compared``)
        self._compared: dict[tuple[str, int], tuple[Files, ServedModel, bool]] = {}
        self._said_rewritten: dict[tuple[str, int], Files] = {}  # the files each warning was said for
        self._holding: tuple[str, float] | None = None  # what holds the lock ("a load of model esmm") and since when
        self._reading: dict[str, list[int]] = {}  # (thread) model -> the versions its load under way began to read
        self.polls_done = 0  # polls of every model finished: how a test observes that N polls have passed

    def poll_for_all(self, polls: bool, load: Callable[[str], Awaitable[object]]) -> None:
        """Several worker processes: whether this one is the one that polls the repository, and how what it
        finds is loaded (in every worker: sibling_admin.py), so that one decision changes them all. Each
        worker reads the repository at its own start, so a version published meanwhile could split them for
        good (the poller compares the disk with its own versions): its first poll of each model loads it in
        every worker once."""
        self._polls, self._poll_load = polls, load
        self._unchecked = set(self.models.names) if polls else set()

    @property
    def models(self) -> ServingModels:
        return self.state.models

    async def start(self) -> None:
        """Load every model the settings name; start polling the repository when they ask for it."""
        for name in self.models.names:
            try:
                await self.load(name)
            except RoleConflict:
                raise  # role models that cannot serve together (snapshot.role_conflict) stop the start-up
            except ModelLoadError as error:
                optional = name not in self.models.required
                level = logging.WARNING if optional else logging.ERROR
                root = self.settings.model_repository.absolute()  # "models" said nothing of where it was looked for
                logger.log(level, "model %s is not served: %s (repository %s)", name, error, root)
        if self.models.retrieval_name in self.models.loaded and self.models.retrieval is None:
            logger.warning("/v1/similarity cannot answer: %s", self.models.retrieval_unavailable())
        unserved = sorted(set(self.models.required) - set(self.models.loaded))
        if unserved and self.settings.poll_interval_s <= 0 and self.settings.admin_token is None:
            what = "role model(s)" if self.settings.roles else "retrieval model"
            alone = "" if self.settings.roles else " (the service fills no role: it would serve nothing)"
            # a model whose versions were refused (a [serving] mistake, a damaged file) is not mended by publishing:
            # `ctr prepare` trains none that has a whole version, so the advice sent its user round in a loop
            refused = [name for name in unserved if self._published(name)]
            absent = [name for name in unserved if name not in refused]
            fixes = []
            if refused:
                fixes.append(f"mend what the line above says of {', '.join(refused)}, whose versions were refused")
            if absent:
                fixes.append(f"publish {', '.join(absent) if refused else 'them'} first (ctr prepare, ctr export)")
            said = (  # a not-ready process no supervisor restarts, where models published since would serve
                f"not starting: {what} {', '.join(unserved)} not served{alone}, and nothing would load them later "
                f"(CTR_POLL_INTERVAL_S is 0 and CTR_ADMIN_TOKEN unset): {'; '.join(fixes)}, "
                "or set CTR_POLL_INTERVAL_S to serve them once published"
            )
            logger.error("%s", said)
            raise NothingWouldLoad(said)
        if self.settings.poll_interval_s > 0 and self._polls:
            self.metrics.polls_failing.update(dict.fromkeys(self._polled(), False))  # each series from 0
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="repository-poll")

    def _published(self, name: str) -> bool:
        """Whether the repository holds versions of ``name`` (refused ones, where it is not served)."""
        try:
            return bool(versions(self.settings.model_repository, name))
        except (OSError, ValueError):  # a folder not listed, a name no version could have: said by its load
            return False

    async def poll_load(self, name: str) -> LoadResult:
        """A load that polling decided on: nothing, for a model unloaded on purpose meanwhile (the unload may
        land while the poll looks at the disk, or, with several workers, while it waits its turn)."""
        return await self.load(name, polled=True)

    async def load(self, name: str, polled: bool = False, wait_s: float | None = None) -> LoadResult:
        """(Re)load ``name`` per its version policy and swap it in; ModelLoadError leaves all as it was. A load
        not ``polled`` (the operator's, the start's) ends an unload's hold on the model. ``wait_s``: the longest
        wait for a load or unload under way (None: as long as it takes), ManagerBusy past it."""
        try:
            validate_model_name(name)
        except ValueError as error:
            raise ModelLoadError(str(error)) from None
        async with self._locked(f"a load of model {name}", wait_s):
            if polled and name in self._held:
                return LoadResult(name, [], {})
            self._held.discard(name)
            current = dict(self.models.versions.get(name, {}))
            refused: dict[int, Refusal] = {}
            loaded_files: dict[int, Files] = {}
            read = await self._watched(name, refused, loaded_files, current, polled)
            refused = self._with_retries(name, refused)
            self._count_refused(name, refused, read.known)
            if read.error is not None:
                # a name the settings do not name and with no folder in the repository is no model's: an
                # admin load of random names kept an error (and a metrics series) for each until the restart
                said = name in self.models.loaded or not read.known
                errors = self.models.errors if said else {**self.models.errors, name: str(read.error)}
                refusals = self._refusals(name, refused, read.on_disk)
                self._swap(replace(self.models, errors=errors, refused=refusals))
                raise read.error
            config, chosen = read.config, read.chosen
            old = self.models
            snapshot = replace(
                old,
                loaded={**old.loaded, name: chosen[max(chosen)]},
                versions={**old.versions, name: chosen},
                errors={k: v for k, v in old.errors.items() if k != name},
                refused=self._refusals(name, refused, read.on_disk, served=chosen),
            )
            conflict = snapshot.role_conflict()
            if conflict is not None:
                new_versions = [v for v in chosen if v not in current]
                return self._refuse_conflicting(name, current, new_versions, refused, conflict, read, loaded_files)
            keep_batchers = self.configs.get(name) == config
            batchers = {m: b for m, b in old.batchers.items() if m.name != name}
            served = old.loaded.get(name)
            measured = old.batchers[served].rate if served is not None and served in old.batchers else None
            for model in chosen.values():
                batcher = old.batchers.get(model) if keep_batchers else None
                batchers[model] = batcher if batcher is not None else self._batcher(model, config, measured)
            self.configs[name] = config
            self._swap(replace(snapshot, batchers=batchers))
            self._files = {k: f for k, f in self._files.items() if k[0] != name or k[1] in chosen}
            self._files.update({(name, version): files for version, files in loaded_files.items()})
            self._forget_compared(lambda key: key not in self._files or (key[0] == name and key[1] in loaded_files))
            logger.info("model %s serving versions %s", name, sorted(chosen))
            self._retire((m, b) for m, b in old.batchers.items() if batchers.get(m) is not b)
            return LoadResult(name, sorted(chosen), refused)

    async def _watched(
        self,
        name: str,
        refused: dict[int, Refusal],
        loaded_files: dict[int, Files],
        current: dict[int, ServedModel],
        polled: bool,
    ) -> DiskRead:
        """``_read`` in a worker thread, said once it has run ``SLOW_LOAD_S`` and again at each doubling (one line
        each: a read stalled on the storage holds the lock, and nothing else said why admin operations answer 503),
        with the model's poll gauge set. The thread cannot be stopped: cancelled (the service stopping), the wait
        for it is abandoned, not the thread, so that the shutdown is not held up until the storage answers."""
        self._reading.pop(name, None)
        started = time.monotonic()
        call = partial(self._read, name, current, refused, polled, loaded_files)
        reading = asyncio.ensure_future(to_thread.run_sync(call, abandon_on_cancel=True))
        said_at = SLOW_LOAD_S
        try:
            while not (await asyncio.wait({reading}, timeout=started + said_at - time.monotonic()))[0]:
                unfinished = [v for v in self._reading.get(name, ()) if v not in refused and v not in loaded_files]
                which = f" version {unfinished[-1]}" if unfinished else " (listing its versions)"
                logger.warning(
                    "still loading model %s%s after %.0f s: the repository's storage may be stalled (admin loads "
                    "and unloads answer 503 meanwhile)",
                    name,
                    which,
                    time.monotonic() - started,
                )
                if self._poller is not None and name not in self._held:
                    self.metrics.polls_failing[name] = True  # the poll loop waits for it: its next poll says
                said_at *= 2
            return reading.result()
        finally:
            reading.cancel()  # a no-op once it is done
            self._reading.pop(name, None)

    def _read(
        self,
        name: str,
        current: dict[int, ServedModel],
        refused: dict[int, Refusal],
        polled: bool,
        loaded_files: dict[int, Files],
    ) -> DiskRead:
        """(thread) ``_load_versions``, its ModelLoadError returned, with the versions on disk afterwards (for
        ``_refusals``) and whether the name is a model's."""
        try:
            config, chosen = self._load_versions(name, current, refused, polled, loaded_files)
        except ModelLoadError as error:
            return DiskRead(None, {}, error, self._on_disk(name), self._known(name))
        return DiskRead(config, chosen, None, self._on_disk(name), True)

    def _on_disk(self, name: str) -> set[int] | None:
        """(thread) The versions of ``name`` on disk; None when its directory cannot be listed."""
        try:
            return set(versions(self.settings.model_repository, name))
        except OSError:
            return None

    @asynccontextmanager
    async def _locked(self, what: str, wait_s: float | None) -> AsyncIterator[None]:
        """The lock every change takes, held as ``what`` ("a load of model esmm"). ``wait_s``: the longest wait
        for it (None: as long as it takes); ManagerBusy past it, or at once when the service begins to stop (the
        admin requests waiting for a stalled load were cancelled at the end of the drain, with a traceback each)."""
        if wait_s is None:
            await self._lock.acquire()
        else:
            await self._acquire_within(wait_s)
        self._holding = (what, time.monotonic())
        try:
            yield
        finally:
            self._holding = None
            self._lock.release()

    async def _acquire_within(self, wait_s: float) -> None:
        """Take the lock within ``wait_s``, looking every ``LOCK_LOOK_S`` whether the service began to stop. One
        acquire waits the whole time, so the operation keeps its place in the lock's queue (an acquire given up
        at each look went to the back of it, behind loads that wait as long as it takes); given up, it is
        cancelled, which hands the lock on if it had just been given (asyncio.Lock's own care)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        acquiring = asyncio.ensure_future(self._lock.acquire())
        try:
            while not acquiring.done() and not getattr(self.state, "draining", False):
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait({acquiring}, timeout=min(left, LOCK_LOOK_S))
        finally:
            if not acquiring.done():
                acquiring.cancel()
        if acquiring.done() and not acquiring.cancelled():
            return
        what, since = self._holding or ("another load or unload", time.monotonic())
        running = f"{what} has been running for {time.monotonic() - since:.1f} s"
        if getattr(self.state, "draining", False):
            raise ManagerBusy(f"the service is stopping while {running}: try another replica")
        raise ManagerBusy(f"{running}; try again")

    def _with_retries(self, name: str, refused: dict[int, Refusal]) -> dict[int, Refusal]:
        """A load's refusals, each on a read the storage failed with polling's next try of it (refusal.py), when
        the service polls."""
        interval_s, now = self.settings.poll_interval_s, time.monotonic()
        if interval_s <= 0:
            return refused
        before = self.models.refused
        return {
            version: refusal.retried_by_polling(before.get((name, version)), interval_s, now)
            if refusal.storage_failed
            else refusal
            for version, refusal in refused.items()
        }

    def _refuse_conflicting(
        self,
        name: str,
        current: dict[int, ServedModel],
        new_versions: list[int],
        refused: dict[int, Refusal],
        conflict: str,
        read: DiskRead,
        loaded_files: dict[int, Files],
    ) -> LoadResult:
        """A load whose new versions cannot serve beside the other role models: what is served stays as it
        was, and they are refused beside the versions this load ``refused`` for a failed check (listed by the
        index, counted, not loaded again by polling: each poll loaded and warmed them up again, listed
        nowhere), until their files change or the other models served do. RoleConflict when nothing of the
        model was served (the start-up stops) or nothing new conflicts."""
        logger.error("model %s not served: %s", name, conflict)
        beside = self._others_served(name)  # each new version's files as the load found them (not listed here)
        conflicting = {version: Refusal(conflict, loaded_files[version], beside) for version in new_versions}
        self.metrics.refusals[name] += len(conflicting)
        refused = refused | conflicting
        self._swap(replace(self.models, refused=self._refusals(name, refused, read.on_disk, served=current)))
        if not current or not conflicting:
            raise RoleConflict(conflict)
        return LoadResult(name, sorted(current), refused)

    def _others_served(self, name: str, models: ServingModels | None = None) -> tuple[tuple[str, int], ...]:
        """The versions of the other role models served now (in ``models``, by default the snapshot served):
        what a role conflict of ``name`` depends on (a retrieval model's reload does not change it)."""
        models = models if models is not None else self.models
        others = {models.roles[role] for role in models.roles} - {name}
        return tuple(sorted((other, models.loaded[other].version) for other in others if other in models.loaded))

    def _refusals(
        self, name: str, refused: dict[int, Refusal], on_disk: set[int] | None, served: Any = ()
    ) -> dict[tuple[str, int], Refusal]:
        """The snapshot's refusals after a load of ``name``: this load's, plus earlier ones not retried
        whose version is still ``on_disk`` (a refusal of a version since deleted was kept for good)."""
        if on_disk is None:  # the model's directory cannot be listed (the load said so): its refusals are kept
            on_disk = {version for model, version in self.models.refused if model == name}
        kept = {
            (model, version): refusal
            for (model, version), refusal in self.models.refused.items()
            if model != name or (version not in served and version in on_disk)
        }
        return kept | {(name, version): refusal for version, refusal in refused.items()}

    async def unload(self, name: str, wait_s: float | None = None) -> None:
        """Stop serving every version of ``name``, until a load; queued requests still finish. KeyError if
        not served. ``wait_s``: as ``load``'s."""
        async with self._locked(f"an unload of model {name}", wait_s):
            old = self.models
            if name not in old.loaded:
                raise KeyError(name)
            self._swap(
                replace(
                    old,
                    loaded={k: v for k, v in old.loaded.items() if k != name},
                    versions={k: v for k, v in old.versions.items() if k != name},
                    errors={**old.errors, name: "unloaded"},
                    batchers={m: b for m, b in old.batchers.items() if m.name != name},
                )
            )
            self.configs.pop(name, None)
            self._files = {k: f for k, f in self._files.items() if k[0] != name}
            self._forget_compared(lambda key: key[0] == name)
            self._held.add(name)
            self.metrics.polls_failing.pop(name, None)  # not polled until loaded again
            polled = " (polling leaves it unloaded until a load)" if self.settings.poll_interval_s > 0 else ""
            if name in old.required:  # answered 200 alone, said at INFO: the service not ready, without a word
                roles = [role for role, model in old.roles.items() if model == name]
                needs = (
                    f"it fills {counted(len(roles), 'role')} ({', '.join(roles)})"
                    if roles
                    else "this retrieval service serves it"
                )
                route = "/v1/score" if roles else "/v1/similarity"
                logger.warning(
                    "model %s unloaded%s: %s, so the service is not ready (/v2/health/ready and %s answer 503) until "
                    "it is loaded again",
                    name,
                    polled,
                    needs,
                    route,
                )
            else:
                logger.info("model %s unloaded%s", name, polled)
            self._retire((m, b) for m, b in old.batchers.items() if m.name == name)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling, then drain every batcher: queued requests are answered before this returns."""
        if self._poller is not None:
            self._poller.cancel()
        snapshot = self.models
        self._retire(snapshot.batchers.items(), timeout_s)
        if self._retiring:
            await asyncio.wait(set(self._retiring), timeout=timeout_s)

    def _swap(self, snapshot: ServingModels) -> None:
        self.state.models = snapshot  # one reference assignment: a request sees the old or the new

    def _batcher(self, model: ServedModel, config: ServingConfig, measured: ServiceRate | None = None) -> Batcher:
        """A started batcher for ``model``; its service rate starts from ``measured``, the rate of the version
        it takes over from (its first runs, small batches with the fixed cost of each, put the rate at 1-3%
        of the steady one, and a small request behind a large one was refused as overloaded after every
        reload), else from the model's largest warm-up run (``warm_up_rate``: a fresh start's)."""
        if (model.name, model.version) not in self.models.served:
            # served anew (a rollback included): its series from 0 in every worker, though another's batcher
            # of it were still draining (it carried on from its count while this worker's restarted: a reset)
            self.metrics.restart((model.name, model.version))
        info = {"provider": model.provider, "sha256": model.manifest.onnx_sha256}  # MODEL_INFO_LABELS
        means = training_means(model.manifest.metrics)  # the served mean's baseline, once per load
        stats = self.metrics.model(model.name, model.version, info, means)
        for encoder in model.encoders:  # its clipped values counted with the version's other figures
            stats.clipped.update(dict.fromkeys(encoder.numeric_names, 0))  # each series from 0
            encoder.clipped = stats.clipped
        for name in SUMMED_OUTPUTS:  # each of its probabilities' sums, from 0 too (rate() sees the first run)
            if name in getattr(model, "output_names", ()):
                stats.output_sums.setdefault(name, 0.0)
        batch = replace(config.batch, retry_after_s=self.settings.retry_after_s)
        label = f"{model.name}:{model.version}"
        batcher = Batcher(model.run, batch, stats, label=label, collate=model.collate)
        batcher.rate = copy(measured if measured is not None else model.warm_up_rate)
        batcher.start()
        return batcher

    def _retire(self, batchers: Iterable[tuple[ServedModel, Batcher]], timeout_s: float = 30.0) -> None:
        """Drain and stop batchers no longer served; their requests count as pending until they are done."""
        loop = asyncio.get_running_loop()
        for model, batcher in dict(batchers).items():
            key = (model.name, model.version)
            task = loop.create_task(batcher.retire(timeout_s))
            self._retiring.add(task)
            self._draining[task] = (key, batcher)
            task.add_done_callback(self._retired)

    def _retired(self, task: asyncio.Task) -> None:
        """A batcher has drained: the counters of its version go too, unless the version is served again (or
        still draining elsewhere). Kept, a service whose model was retrained every hour grew by ~50 series
        of /metrics a version (each worker's shared file too, rewritten every second), without end; a
        version served again starts its series from 0, which Prometheus reads as the reset it is."""
        self._retiring.discard(task)
        retired = self._draining.pop(task, None)
        if retired is None:
            return
        key = retired[0]
        if key not in self.models.served and all(other != key for other, _ in self._draining.values()):
            self.metrics.forget(key)
            logger.info("model %s version %d retired: its queue drained, its series dropped", *key)

    def pending(self) -> dict[tuple[str, int], int]:
        """(name, version) -> the requests waiting in or running through its batchers: the served ones', and
        those of batchers still draining after a reload or unload (left out, a reload under load dropped the
        gauge from 14 to 1 while those 14 were still being answered)."""
        pending = self.models.pending
        served = set(self.models.batchers.values())  # stop() drains the batchers it still serves
        for key, batcher in self._draining.values():
            if batcher not in served:
                pending[key] = pending.get(key, 0) + batcher.pending_requests
        return pending

    def _count_refused(self, name: str, refused: dict[int, Refusal], known: bool) -> None:
        """Count a load's refused versions: a model has its series from its first load (0 until a version is
        refused), a name an admin tried that is no model's (not ``known``) none."""
        if refused or known:
            self.metrics.refusals[name] += len(refused)

    def _known(self, name: str) -> bool:
        """(thread) Whether ``name`` is a model's: one the settings name, or a folder of the repository."""
        return name in self.models.names or (self.settings.model_repository / name).is_dir()

    def _load_versions(
        self,
        name: str,
        current: dict[int, ServedModel],
        refused: dict[int, Refusal],
        polled: bool = False,
        loaded_files: dict[int, Files] | None = None,
    ) -> tuple[ServingConfig, dict[int, ServedModel]]:
        """(thread) The serving settings and the versions to serve; ModelLoadError if none loads. A load
        ``polled`` passes over the versions refused before whose files stay as they were (a version published
        after three refused ones loaded, counted and logged each again); the operator's tries them all."""
        config = serving_config(self.settings, name)
        outputs = required_outputs(self.settings.roles).get(name, set())
        policy = config.version_policy
        before = self._refused_as_they_are(name) if polled else {}
        reading = self._reading[name] = []  # the versions read, as their reads begin: what a warning names
        return config, load_versions(
            self.settings, name, policy, outputs, current, refused, self._retried, before, loaded_files, reading
        )

    def rewritten(self, name: str, version: int) -> bool:
        """(thread) Whether a served version's files hold other content than it was loaded from: their
        ``model.json`` or a file's sha256 against the loaded manifest, read once for each new state of their
        names, sizes and times (a chmod or a chown changes those alone: it was said as a rewrite). Its
        directory gone, or one that cannot be listed, is not: each has its own note. It serves what was loaded."""
        key = (name, version)
        loaded, model = self._files.get(key), self.models.versions.get(name, {}).get(version)
        if loaded is None or model is None:
            return False
        directory = version_dir(self.settings.model_repository, name, version)
        now = version_files(directory)
        if not now or now == loaded:
            return False
        compared = self._compared.get(key)
        if compared is None or compared[0] != now or compared[1] is not model:
            differs = content_differs(self.settings.model_repository, model.manifest, changed_names(loaded, now))
            compared = self._compared[key] = (now, model, differs)
        return compared[2]

    def _forget_compared(self, forget: Callable[[tuple[str, int]], bool]) -> None:
        """Drop the comparisons ``forget`` names, in place: threads add to the dict meanwhile, and a
        comprehension over it raised "dictionary changed size during iteration" (``list`` copies the keys in
        one step under the GIL)."""
        for key in [key for key in list(self._compared) if forget(key)]:
            self._compared.pop(key, None)
            self._said_rewritten.pop(key, None)

    def _say_rewritten(self, name: str) -> None:
        """(thread) A warning, once for each state of their files, for each served version of ``name``
        rewritten since it was loaded: a published version is never rewritten, so scores under one version
        number now differ between this process and any started after the change."""
        for version in self.models.versions.get(name, {}):
            key = (name, version)
            if not self.rewritten(name, version):
                self._said_rewritten.pop(key, None)
                continue
            compared = self._compared.get(key)  # the files rewritten() just compared: not listed again
            now = compared[0] if compared is not None else None  # None: a load pruned it meanwhile
            if now is not None and self._said_rewritten.get(key) != now:
                self._said_rewritten[key] = now
                logger.warning(
                    "model %s version %d: its files changed on disk since it was loaded; it serves what was "
                    "loaded, and a process started now reads the files as they are, under the same version: "
                    "publish a change as a new version (ctr export), never over a published one",
                    name,
                    version,
                )

    def _retried(self, storage_failed: bool) -> str:
        """What loads a refused version again, for its log line: polling tries a version the storage failed a
        read of after a backoff, another once its files change (refusal.py)."""
        by_polling = "by polling after a backoff" if storage_failed else "by polling once its files change"
        ways = [by_polling] if self.settings.poll_interval_s > 0 else []
        if self.settings.admin_token is not None:
            ways.append("by an admin load")
        return f"retried {', or '.join(ways)}" if ways else ""

    def _wanted_now(self, name: str) -> set[int] | None:
        """(thread) The versions a load would serve now, skipping ones refused before; None if unknown: the
        serving settings cannot be read, or the model's directory cannot be listed (EIO, a permission), which
        is logged once for each new reason (not at every poll: it was a traceback at each), since no version
        of the model is loaded meanwhile."""
        try:
            policy = serving_config(self.settings, name).version_policy
            on_disk = versions(self.settings.model_repository, name)
        except ModelLoadError as error:
            return self._unreadable_now(name, str(error))
        except OSError as error:
            return self._unreadable_now(name, f"its directory cannot be listed: {error.strerror or error}")
        if self._unreadable.pop(name, None) is not None:
            logger.info("poll: model %s: its serving settings and versions read again", name)
        selected = policy.select(on_disk)
        self._served_from_memory(name, selected)
        refused = self._refused_as_they_are(name)
        candidates = [v for v in selected if v not in refused]
        return set(candidates[: policy.wanted] if policy.wanted is not None else candidates)

    def _served_from_memory(self, name: str, selected: list[int]) -> None:
        """(thread) A warning, once for each new state, while the model's served versions are gone from the disk
        and nothing its policy selects is there to load in their place (its folder deleted, the repository's
        volume unmounted or moved): polling found nothing to load and said nothing, ``ctr_model_poll_failing``
        at 0, and the next restart found no version: it served on from memory, its index entry alone said so."""
        served = sorted(self.models.versions.get(name, {}))
        gone = [v for v in served if not version_dir(self.settings.model_repository, name, v).is_dir()]
        if not gone or selected:
            if self._gone.pop(name, None) is not None:
                logger.info("poll: model %s: versions on disk again", name)
            return
        root = self.settings.model_repository
        where = (
            f"the model repository {root} is gone"
            if not root.is_dir()
            else f"its directory {root / name} is gone"
            if not (root / name).is_dir()
            else f"version {', '.join(map(str, gone))} gone from {root / name}, and none there its policy selects"
        )
        if self._gone.get(name) != where:
            self._gone[name] = where
            logger.warning(
                "poll: model %s: %s: versions %s are served from memory, and a restart would find none to serve",
                name,
                where,
                served,
            )

    def _unreadable_now(self, name: str, reason: str) -> None:
        """(thread) Note why polling cannot read the model (its poll gauge reads it), said once for each new reason."""
        if self._unreadable.get(name) != reason:
            self._unreadable[name] = reason
            logger.warning("poll: model %s: %s: no new version is loaded until it is mended", name, reason)

    def unreadable_settings(self, name: str) -> str:
        """Why the serving settings of ``name`` cannot be read now ("" when they can): read here, in whichever
        worker asks, since only the polling worker's poll notes it."""
        try:
            serving_config(self.settings, name)
        except ModelLoadError as error:
            return str(error)
        return ""

    def _refused_as_they_are(self, name: str) -> dict[int, Refusal]:
        """(thread) The versions of ``name`` refused before that would be refused again: their files as they
        were, and for a role conflict the other role models served as they were; not one refused on a read the
        storage failed whose retry is due."""
        models = self.models  # one snapshot throughout: an admin load may swap in another meanwhile
        root, beside, now = self.settings.model_repository, self._others_served(name, models), time.monotonic()
        return {
            version: refusal
            for (model, version), refusal in models.refused.items()
            if model == name
            and not refusal.retry_due(now)
            and not refusal.files_changed(version_dir(root, name, version))
            and refusal.beside in ((), beside)
        }

    async def _poll(self) -> None:
        """Reload a model when the versions its policy selects on disk differ from those served, or when
        its last load by polling failed: with several workers, this one may have loaded what another did
        not, and only loading again (a no-op where it is served) brings them back together."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            for name in self._polled():
                try:
                    await self._poll_model(name)
                    failing = name in self._unreadable or name in self._unsettled or name in self._gone
                except Exception:  # a bug or the file system's (a directory it may not list): said, and the
                    logger.exception("poll: model %s: unexpected error; polling goes on", name)  # loop lives
                    failing = True
                if name not in self._held:  # (unloaded while it was polled: its gauge went with it)
                    self.metrics.polls_failing[name] = failing  # said once in the log; shown at every scrape
            self.polls_done += 1

    def _polled(self) -> list[str]:
        """The models a poll looks at: those the settings name and those loaded since, but not those unloaded."""
        return sorted((set(self.models.names) | set(self.models.loaded)) - self._held)

    async def _poll_model(self, name: str) -> None:
        """One poll of one model: load it when the versions wanted differ from those served (and say a
        served version rewritten in place)."""
        await run_in_threadpool(self._say_rewritten, name)
        wanted = await run_in_threadpool(self._wanted_now, name)
        served = set(self.models.versions.get(name, {}))
        if wanted and (wanted != served or name in self._unsettled or name in self._unchecked):
            if wanted != served:
                logger.info(
                    "poll: model %s: versions %s wanted, %s served: loading", name, sorted(wanted), sorted(served)
                )
            elif name in self._unsettled:
                logger.info("poll: model %s: versions %s: loading again (the last load failed)", name, sorted(wanted))
            else:
                logger.info(
                    "poll: model %s: versions %s: loading in every worker (each read its own at start)",
                    name,
                    sorted(wanted),
                )
            try:
                await self._poll_load(name)
            except ModelLoadError as error:
                logger.warning("poll: model %s not reloaded: %s", name, error)
                self._unsettled.add(name)
            else:
                self._unsettled.discard(name)
                self._unchecked.discard(name)


def serving_config(settings: Settings, name: str) -> ServingConfig:
    """The model's ``[serving]`` settings; ModelLoadError saying why they cannot be read."""
    try:
        return read_serving_config(settings.model_repository, name, settings.batching, settings.request_timeout_ms)
    except ValueError as error:
        raise ModelLoadError(f"serving settings: {error}") from None
    except OSError as error:  # not readable (a missing file is no error: the defaults serve)
        raise ModelLoadError(f"serving settings: config.toml cannot be read: {error.strerror or error}") from None


def load_snapshot(settings: Settings) -> ServingModels:
    """Each role model's version as a server would serve it (the newest its ``version_policy`` selects that
    loads), without batchers: for tools (``ctr score``) and tests that encode or check requests outside a
    server. A model with no loadable version is left out, with its reason."""
    loaded: dict[str, ServedModel] = {}
    errors: dict[str, str] = {}
    for name, outputs in required_outputs(settings.roles).items():
        try:
            policy = serving_config(settings, name).version_policy  # latest = N serves its newest: load it alone
            chosen = load_versions(settings, name, policy if policy.specific else VersionPolicy(), outputs)
            loaded[name] = chosen[max(chosen)]
        except ModelLoadError as error:
            errors[name] = str(error)
    models = ServingModels(settings.roles, loaded, errors)
    conflict = models.role_conflict()
    if conflict is not None:
        raise RoleConflict(conflict)
    return models
