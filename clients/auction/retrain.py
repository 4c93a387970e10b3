"""The retraining loop of a service pipeline: its last days of logs -> the project's trainer ->
a new version exported into the pipeline's own repository -> hot-loaded through the admin API ->
confirmed in ``/v1/models``.

Training and export are the same functions ``ctr train NAME --logs ... --spec ...`` and
``ctr export NAME`` call, run in this process (one torch import for the whole run).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow as pa

from clients.client import AsyncScoringClient, ServiceError
from training.logs.arrow_files import read_parquet
from training.world import write_logs

logger = logging.getLogger(__name__)


class ReloadRefused(RuntimeError):
    """The service refused a new version, or does not report it after loading."""


@dataclass
class Timings:
    """Seconds a trainer spent training and exporting (the reloads are timed by ``reload_and_confirm``)."""

    retraining: float = 0.0
    export: float = 0.0


@dataclass
class Trainer:
    """Trains and exports a pipeline's role models on a window of its logs."""

    repository: Path
    work_dir: Path
    spec_path: Path  # the world's feature spec, as ``--spec`` takes it
    names: dict[str, str]  # role -> model name in ``repository``
    timings: Timings = field(default_factory=Timings)

    def train_window(self, log_files: list[Path], label: str) -> dict[str, int]:
        """Train every role model on ``log_files`` and export it, once for a model that fills two roles (the
        served default ``esmm``); role -> new version."""
        from training.export import export_checkpoint
        from training.pipeline import train

        window = self.work_dir / f"window_{label}.parquet"
        window.parent.mkdir(parents=True, exist_ok=True)
        write_logs(pa.concat_tables([read_parquet(f) for f in log_files], promote_options="permissive"), window)
        exported: dict[str, int] = {}  # model name -> its new version
        for name in dict.fromkeys(self.names.values()):
            started = time.perf_counter()
            checkpoint = train(name, self.repository, window, self.spec_path, self.work_dir, progress=False)
            trained = time.perf_counter()
            exported[name] = export_checkpoint(checkpoint, self.repository)
            self.timings.retraining += trained - started
            self.timings.export += time.perf_counter() - trained
            logger.info("%s: trained %s on %s, exported version %d", label, name, window.name, exported[name])
        window.unlink()
        return {role: exported[name] for role, name in self.names.items()}


async def reload_and_confirm(
    client: AsyncScoringClient, token: str, names: dict[str, str], expected: dict[str, int]
) -> float:
    """Load each role model's new version through the admin API and check that ``/v1/models``
    reports it; ReloadRefused otherwise. Returns the seconds it took."""
    started = time.perf_counter()
    wanted = {name: expected[role] for role, name in names.items()}  # a model filling two roles loads once
    for name, version in wanted.items():
        try:
            served = await client.load_model(name, token)
        except ServiceError as error:
            raise ReloadRefused(f"the service refused to load {name} version {version}: {error}") from error
        except httpx.TransportError as error:  # went away (a restart, a crash): the pipeline stops, its days kept
            said = str(error) or type(error).__name__
            raise ReloadRefused(f"the service did not answer the load of {name} version {version}: {said}") from error
        if version not in served:
            raise ReloadRefused(f"{name}: the service serves versions {served} after loading, not {version}")
    try:
        reported = {m.name: m.version for m in await client.models()}
    except (ServiceError, httpx.TransportError) as error:
        raise ReloadRefused(
            f"/v1/models did not answer after the load: {str(error) or type(error).__name__}"
        ) from error
    for role, name in names.items():
        if reported.get(name) != expected[role]:
            raise ReloadRefused(f"/v1/models reports {name} version {reported.get(name)}, not {expected[role]}")
    return time.perf_counter() - started
