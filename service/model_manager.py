"""Model management: load, reload and unload models while serving (Triton-style explicit control).

A load reads the model's ``[serving]`` settings and version policy, verifies each version it needs
(checksum, ONNX Runtime load, inputs and outputs as declared, warm-up at the expected batch sizes: see
model_loader.py) in a worker thread, then swaps a new immutable ``ServingModels`` snapshot into
``app.state.models`` in one assignment. Requests already holding the old snapshot finish on it; the
batchers of versions no longer served drain and stop. A version that fails verification is refused
with a log line and the versions already served keep serving; a load that finds nothing loadable
changes nothing. Loads are serialised by a lock, so a reload requested while one runs waits for it.

Versions are immutable once published (they appear by an atomic rename), so a version already served
is kept as it is, with its warm session and batcher, unless its batching settings changed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from common.repository import validate_model_name, versions
from service.batching import Batcher
from service.metrics import Metrics
from service.model_loader import LoadedModel, ModelLoadError, load_version
from service.registry import RegimeMismatch, ServingModels, required_outputs
from service.serving_config import ServingConfig, read_serving_config
from service.settings import Settings

logger = logging.getLogger(__name__)


class ModelManager:
    """Owns the served snapshot in ``state.models`` and every change to it."""

    def __init__(self, state: Any, settings: Settings, metrics: Metrics) -> None:
        self.state = state
        self.settings = settings
        self.metrics = metrics
        self.configs: dict[str, ServingConfig] = {}  # model name -> the settings its batchers run with
        self.refused: dict[tuple[str, int], str] = {}  # (name, version) -> why, so polling does not retry it
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()
        self._poller: asyncio.Task | None = None

    @property
    def models(self) -> ServingModels:
        return self.state.models

    async def start(self) -> None:
        """Load every model a role names; start polling the repository when the settings ask for it.
        Role models whose position regimes differ stop the start-up (RegimeMismatch)."""
        for name in required_outputs(self.settings.roles):
            try:
                await self.load(name)
            except RegimeMismatch:
                raise
            except ModelLoadError as error:
                logger.error("model %s is not served: %s", name, error)
        if self.settings.poll_interval_s > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="repository-poll")

    async def load(self, name: str) -> ServingModels:
        """(Re)load ``name`` per its version policy and swap it in; ModelLoadError leaves all as it was."""
        try:
            validate_model_name(name)
        except ValueError as error:
            raise ModelLoadError(str(error)) from None
        async with self._lock:
            current = dict(self.models.versions.get(name, {}))
            try:
                config, chosen = await run_in_threadpool(self._load_versions, name, current)
            except ModelLoadError as error:
                if name not in self.models.loaded:
                    self._swap(replace(self.models, errors={**self.models.errors, name: str(error)}))
                raise
            old = self.models
            newest = chosen[max(chosen)]
            errors = {k: v for k, v in old.errors.items() if k != name}
            snapshot = replace(
                old, loaded={**old.loaded, name: newest}, versions={**old.versions, name: chosen}, errors=errors
            )
            conflict = snapshot.regime_conflict()
            if conflict is not None:  # refused: what is served stays as it was
                logger.error("model %s not served: %s", name, conflict)
                raise RegimeMismatch(conflict)
            keep_batchers = self.configs.get(name) == config
            batchers = {m: b for m, b in old.batchers.items() if m.name != name}
            for model in chosen.values():
                batcher = old.batchers.get(model) if keep_batchers else None
                batchers[model] = batcher if batcher is not None else self._batcher(model, config)
            self.configs[name] = config
            self._swap(replace(snapshot, batchers=batchers))
            logger.info("model %s serving versions %s", name, sorted(chosen))
            self._retire(b for m, b in old.batchers.items() if batchers.get(m) is not b)
            return self.models

    async def unload(self, name: str) -> None:
        """Stop serving every version of ``name``; queued requests still finish. KeyError if not served."""
        async with self._lock:
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
            logger.info("model %s unloaded", name)
            self._retire(b for m, b in old.batchers.items() if m.name == name)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling, then drain every batcher: queued requests are answered before this returns."""
        if self._poller is not None:
            self._poller.cancel()
        snapshot = self.models
        self._retire(snapshot.batchers.values(), timeout_s)
        if self._retiring:
            await asyncio.wait(set(self._retiring), timeout=timeout_s)

    def _swap(self, snapshot: ServingModels) -> None:
        self.state.models = snapshot  # one reference assignment: a request sees the old or the new

    def _batcher(self, model: LoadedModel, config: ServingConfig) -> Batcher:
        stats = self.metrics.model(model.name, model.version, model.provider)
        batch = replace(config.batch, retry_after_s=self.settings.retry_after_s)
        batcher = Batcher(model.run, batch, stats, label=f"{model.name}:{model.version}", encode=model.encode)
        batcher.start()
        return batcher

    def _retire(self, batchers: Any, timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        for batcher in set(batchers):
            task = loop.create_task(batcher.retire(timeout_s))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def _load_versions(
        self, name: str, current: dict[int, LoadedModel]
    ) -> tuple[ServingConfig, dict[int, LoadedModel]]:
        """(thread) The versions to serve, newest first per the policy; ModelLoadError if none loads."""
        root = self.settings.model_repository
        try:
            config = read_serving_config(root, name, self.settings.batching)
        except ValueError as error:
            raise ModelLoadError(f"serving settings: {error}") from None
        outputs = required_outputs(self.settings.roles).get(name, set())
        available = versions(root, name)
        if not available:
            raise ModelLoadError(f"no versions of model {name!r} under {root}")
        chosen: dict[int, LoadedModel] = {}
        wanted = config.version_policy.wanted
        for version in config.version_policy.select(available):
            if wanted is not None and len(chosen) >= wanted:
                break
            if version in current:
                chosen[version] = current[version]
                continue
            try:
                chosen[version] = load_version(root, name, version, self.settings, outputs)
            except ModelLoadError as error:
                logger.warning("model %s version %d refused: %s", name, version, error)
                self.refused[(name, version)] = str(error)
                continue
            self.refused.pop((name, version), None)
            model = chosen[version]
            logger.info("model %s version %d loaded (kind %s, provider %s)", name, version, model.kind, model.provider)
        if not chosen:
            raise ModelLoadError(f"no loadable version of model {name!r} (tried {sorted(available, reverse=True)})")
        return config, chosen

    def _wanted_now(self, name: str) -> set[int] | None:
        """(thread) The versions a load would serve now, skipping ones refused before; None if unknown."""
        try:
            config = read_serving_config(self.settings.model_repository, name, self.settings.batching)
        except ValueError:
            return None
        candidates = [
            v
            for v in config.version_policy.select(versions(self.settings.model_repository, name))
            if (name, v) not in self.refused
        ]
        wanted = config.version_policy.wanted
        return set(candidates[:wanted] if wanted is not None else candidates)

    async def _poll(self) -> None:
        """Reload a model when the versions its policy selects on disk differ from those served."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            names = set(required_outputs(self.settings.roles)) | set(self.models.loaded)
            for name in sorted(names):
                wanted = await run_in_threadpool(self._wanted_now, name)
                if wanted and wanted != set(self.models.versions.get(name, {})):
                    try:
                        await self.load(name)
                    except ModelLoadError as error:
                        logger.warning("poll: model %s not reloaded: %s", name, error)
