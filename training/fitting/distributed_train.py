"""``ctr train NAME --logs 'DIR/*.parquet' --distributed``: a repository model trained on streamed shards,
by one process or by each process that ``torchrun`` starts.

1. Statistics: the numeric features' moments and the position CTRs over the whole log, each process
   summarising every ``world_size``-th row group, the summaries gathered and merged in row-group order
   (training/logs/log_statistics.py); or read from an earlier run's ``statistics.json``.
2. Constants: each process fixes the model's constants (``fix_constants``) on the same sample of
   row groups spread over the training rows; DDP then starts every process from rank 0's weights.
3. Training: the model's phases, each process on its own part of the rows (training/logs/stream.py) with
   ``batch_size / world_size`` rows a step, so one step sees ``batch_size`` rows in all, as in one
   process; DDP averages the gradients.
4. Rank 0 scores the held-out latest rows after every epoch of the main phase, as the in-memory trainer
   does (one line each, ``validation_by_epoch``; with ``keep_best_epoch`` its verdict reaches every process,
   which puts back its own copy of the kept epoch's weights, and with ``early_stop_patience`` every process
   ends the main phase after the same epoch, from the same verdicts: training/fitting/kept_epoch.py), records the
   constant predictor beside them (from the label counts, no read of the rows), writes the checkpoint and, if asked,
   exports it; the other processes wait for it and leave. An exception in any process ends that process with
   its message, and torchrun then stops the others and fails.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from common.repository import CONFIG_FILE
from training.fitting.checkpoint import TRAINED_UNDER, Checkpoint, trained_under
from training.fitting.distributed import (
    Processes,
    averaged_gradients,
    check_replicas_agree,
    cpu_seconds,
    peak_rss_mib,
    processes,
)
from training.fitting.epoch_validation import BY_EPOCH, EpochValidation
from training.fitting.fit import evaluate_chunks, fix_model_constants, model_phases, run_phases
from training.fitting.kept_epoch import KeptEpoch, say_nothing_judged
from training.fitting.settings import TrainingConfig
from training.fitting.split_labels import LabelCounts, SplitLabels
from training.logs.column_arrays import column_array
from training.logs.log_statistics import LogStatistics, chunk_statistics, merge_in_order
from training.logs.stream import BUFFER_ROWS, ImpressionStream, ShardedLogs, Span
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.pipeline import make_checkpoint, say_validation, training_settings, warn_if_small
from training.training_files import checkpoint_path, own_logs_spec

logger = logging.getLogger(__name__)

STATISTICS_FILE = "statistics.json"


@dataclass(frozen=True)
class StreamSettings:
    workers: int = 0  # DataLoader worker processes per training process (0: read in the process itself)
    buffer_rows: int = BUFFER_ROWS  # rows each reader's shuffle buffer mixes
    statistics: Path | None = None  # an earlier run's statistics.json instead of a statistics pass

    def __post_init__(self) -> None:
        if self.workers < 0 or self.buffer_rows < 1:
            raise ValueError(f"workers must be >= 0 and buffer_rows >= 1, not {self.workers} and {self.buffer_rows}")


def train_streaming(
    name: str,
    logs: Path,
    spec_path: Path | None = None,
    root: Path = Path("models"),
    work_dir: Path = Path("artifacts"),
    settings: StreamSettings | None = None,
    distributed: bool = True,
    progress: bool = True,
) -> Checkpoint | None:
    """Train ``name`` on the shards at ``logs``; rank 0 saves (and returns) the checkpoint, others None."""
    settings = settings or StreamSettings()
    with processes(distributed) as group:
        config, training, spec, shards = streamed_inputs(name, logs, spec_path, root, group.world_size)
        under = trained_under(config, simulated=False)  # streamed: always your logs; before the scaling
        config = replace(config, training=training)  # the settings trained with are the ones recorded
        statistics = log_statistics(shards, spec, group, settings.statistics)
        labels = split_labels(shards, config.training.validation_fraction, group)
        labels.refuse_one_class(logs)
        if group.is_main:  # once, not by every process
            statistics.warn_of_log_quality(spec, shards)
            warn_if_small(name, config.training, statistics.rows, labels.training.clicks)
            statistics.save(work_dir / name / STATISTICS_FILE)
        spec = statistics.fitted(spec)
        encoder, position_ctr = FeatureEncoder(spec), statistics.position_ctr()
        train_spans, held_out = shards.split(config.training.validation_fraction)

        model = build_model(config.kind, spec, config.model, seed=config.training.seed)
        if group.is_main:
            labels.warn_of_conversions(logs, model)
        sample = shards.sample(train_spans, encoder, position_ctr)  # (for fix_constants, model.json's position)
        fix_model_constants(model, sample.tensors, config.training.validation_fraction)
        model.to(group.device)
        batch_size = per_process_batch(config.training.batch_size, group.world_size)
        stream = ImpressionStream(
            shards, train_spans, encoder, position_ctr, batch_size, group.rank, group.world_size,
            config.training.seed, settings.buffer_rows,
        )  # fmt: skip
        held_out_rows = (
            HeldOut(lambda: shards.tensors(held_out, encoder, position_ctr), labels.constant_rates())
            if held_out
            else None
        )
        started, cpu_started = time.perf_counter(), cpu_seconds()
        trained = fit_stream(
            model, stream, config, group, settings.workers, progress and group.is_main,
            held_out_rows if group.is_main else None, bool(held_out),
        )  # fmt: skip
        # the held-out scoring's time is not training's (rows_per_second is the training rows' alone)
        scoring = held_out_rows.seconds if held_out_rows else 0.0
        seconds, cpu = time.perf_counter() - started - scoring, group.gather(round(cpu_seconds() - cpu_started, 1))
        rows = stream.rows_per_epoch(settings.workers) * group.world_size * trained.passes  # by all processes
        check_replicas_agree(model, group)
        memory = group.gather(peak_rss_mib())
        checkpoint = None
        if group.is_main:
            model.cpu()
            metrics = trained.metrics(model, held_out_rows)
            if held_out:  # from the label counts already taken: no read of the rows
                metrics |= labels.constant_reference("ctcvr_logloss" in metrics)
            say_validation(metrics, root / name / CONFIG_FILE, config.training.batch_size)
            memory[0] = peak_rss_mib()  # rank 0's again, after it scored the held-out rows
            record = {
                TRAINED_UNDER: under,
                "impressions": shards.rows,
                "processes": group.world_size,
                "workers_per_process": settings.workers,
                "training_seconds": round(seconds, 2),
                "validation_seconds": round(scoring, 2),  # rank 0's, after each epoch (the others waited)
                "rows_per_second": round(rows / seconds, 1),
                "cpu_seconds": cpu,  # per process, while training (rank 0's with its per-epoch scoring; contention)
                "peak_rss_mib": [own for own, _ in memory],
                "peak_rss_mib_workers": [worker for _, worker in memory],
            }
            checkpoint = make_checkpoint(config, spec, model, metrics, logs, record, sample.tensors)
            checkpoint.save(checkpoint_path(work_dir, name))
            logger.info("trained %s: %s", name, record)
        group.barrier()  # the others leave once rank 0 has written everything
        return checkpoint


def streamed_inputs(
    name: str, logs: Path, spec_path: Path | None, root: Path, processes: int
) -> tuple[ModelConfig, TrainingConfig, FeatureSpec, ShardedLogs]:
    """(the model's config as config.toml gives it, the settings it trains with, the feature spec, the
    shards) of a run by ``processes``; ValueError or FileNotFoundError naming what is wrong: a kind that
    does not train on impressions, no log, no spec, a shard without a required column or at odds with the
    others. The spec and the settings are chosen as in memory (``own_logs_spec``,
    ``training_settings``: a small log's batch and epochs scaled), the shards' row count read from their
    footers. The config as given is what ``trained_under`` records (``ctr export`` compares it with
    config.toml: the scaled batch recorded refused the export of every model streamed from a small log)."""
    config = ModelConfig.load(root, name)
    spec = FeatureSpec.from_toml(own_logs_spec(root, name, config.kind, logs, spec_path, streamed=True))
    shards = ShardedLogs(logs, spec)
    return config, training_settings(config, root, shards.rows, processes), spec, shards


def check_before_launch(
    name: str, logs: Path, spec_path: Path | None, root: Path, nproc: int, statistics: Path | None
) -> None:
    """What ``ctr train --nproc N`` checks before torchrun starts N processes, so that a mistake is one
    line at once, not each process's traceback around it: the inputs (``streamed_inputs``), the batch's
    split over the processes, a ``--statistics`` file's fit to these shards and the clicks it counted
    (``SplitLabels.refuse_one_class``, from one pass over the label columns; without one, the processes count
    them after their statistics pass, which checks the labels first)."""
    _, training, spec, shards = streamed_inputs(name, logs, spec_path, root, nproc)
    per_process_batch(training.batch_size, nproc)
    if statistics is not None:
        log_statistics(shards, spec, Processes(), statistics)
        split_labels(shards, training.validation_fraction, Processes()).refuse_one_class(logs)


def per_process_batch(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {world_size} processes")
    return batch_size // world_size


class HeldOut:
    """The held-out rows, read again for each scoring (a streamed log's tail need not fit in memory), the
    training rows' rates the constant predicts (``evaluate_chunks``' ``rates``) and the seconds spent scoring
    them."""

    def __init__(self, chunks: Callable[[], Iterator], rates: dict[str, float] | None = None) -> None:
        self.chunks, self.rates, self.seconds = chunks, rates, 0.0

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """``evaluate_chunks`` of ``model``, or of a CPU copy where it is on a GPU (``predict`` reads its outputs
        as NumPy arrays; moving the model itself would move it under DistributedDataParallel's feet)."""
        started = time.perf_counter()
        on_cpu = model if all(p.device.type == "cpu" for p in model.parameters()) else copy.deepcopy(model).cpu()
        metrics = evaluate_chunks(on_cpu, self.chunks(), self.rates)
        self.seconds += time.perf_counter() - started
        return metrics


@dataclass
class StreamTrained:
    """What ``fit_stream`` leaves: the main phase's last-epoch loss, the passes over the rows, and its
    per-epoch validation (rank 0's) and kept epoch."""

    loss: float
    passes: int
    phases: int
    validated: EpochValidation | None
    kept: KeptEpoch | None

    def metrics(self, model: nn.Module, held_out: HeldOut | None) -> dict:
        """Rank 0's metrics, as the in-memory trainer's (``fit``): the last (or kept) epoch's validation, scored
        again only where a later phase moved the weights since."""
        metrics: dict = {}
        if self.validated is not None and held_out is not None:
            epoch = self.kept.epoch if self.kept else 0
            one_phase = self.phases == 1 and self.validated.records
            metrics = self.validated.final(epoch) if one_phase else held_out.metrics(model)
            metrics[BY_EPOCH] = self.validated.records
        return metrics | {"training_loss": self.loss} | (self.kept.summary() if self.kept else {})


def fit_stream(
    model: nn.Module,
    stream: ImpressionStream,
    config: ModelConfig,
    group: Processes,
    workers: int,
    progress: bool,
    held_out: HeldOut | None = None,
    validating: bool = False,
) -> StreamTrained:
    """The model's training phases over the stream, gradients averaged over the processes; the main phase's
    last-epoch loss is averaged over the processes. ``held_out``: the rows this process scores after each epoch
    of the main phase (rank 0's; None on the others); ``validating``: whether rank 0 scores any (every process
    then takes part in keep_best_epoch's verdict, and early_stop_patience's stop follows from it)."""
    torch.manual_seed(config.training.seed)
    phases = model_phases(model, config.training)
    validated = EpochValidation(lambda: held_out.metrics(model), phases[0].epochs) if held_out else None
    kept, patience = None, config.training.early_stop_patience
    if config.training.keep_best_epoch and validating:  # every process stops where rank 0's verdicts say
        kept = KeptEpoch(model, validated, phases[0].epochs, lambda verdict: group.gather(verdict)[0], patience)
    elif config.training.keep_best_epoch and group.is_main:
        say_nothing_judged(patience)
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    epochs, steps = 0, stream.steps(workers)

    def epoch_batches(_: int):
        nonlocal epochs
        stream.set_epoch(epochs)  # every pass over the rows in a new order, whichever phase
        epochs += 1
        for step, batch in enumerate(loader, 1):
            if group.is_main and not progress and step % max(steps // 10, 1) == 0:
                logger.info("pass %d over the rows: step %d of %d", epochs, step, steps)
            yield {k: v.to(group.device, non_blocking=True) for k, v in batch.items()}

    with averaged_gradients(model, group):
        loss = run_phases(model, phases, epoch_batches, steps, progress, kept or validated, group)
    return StreamTrained(loss, epochs, len(phases), validated, kept)


def split_labels(shards: ShardedLogs, validation_fraction: float, group: Processes) -> SplitLabels:
    """The clicks and conversions of the training rows and of the held-out tail: each process reads the label
    columns of every ``world_size``-th span on either side of the cut, the counts summed over the processes."""
    training, held_out = shards.split(validation_fraction)

    def counted(spans: list[Span]) -> LabelCounts:
        own = LabelCounts()
        for span in spans[group.rank :: group.world_size]:  # one span's two columns in memory at a time
            table = shards.read(span, ["click", "conversion"])
            own += LabelCounts.of(column_array(table, "click"), column_array(table, "conversion"))
        return sum(group.gather(own), LabelCounts())

    return SplitLabels(counted(training), counted(held_out), validation_fraction)


def log_statistics(shards: ShardedLogs, spec: FeatureSpec, group: Processes, path: Path | None) -> LogStatistics:
    """The log's statistics: read from ``path``, or one pass shared by the processes."""
    if path is not None:
        statistics = LogStatistics.load(path)
        if statistics.rows != shards.rows:
            raise ValueError(f"{path} was fitted on {statistics.rows} rows; {shards.path} holds {shards.rows}")
        if statistics.logs and statistics.logs != shards.identity():  # the same rows, other files or sizes
            raise ValueError(f"{path} was fitted on other shards than those of {shards.path} (their names or sizes)")
        statistics.check_transforms(spec, path)
        return statistics
    started = time.perf_counter()
    mine = [(g, chunk_statistics(shards, g, spec)) for g in range(group.rank, len(shards.groups), group.world_size)]
    merged = merge_in_order([item for part in group.gather(mine) for item in part])
    transforms = {f.name: f.transform for f in spec.numeric if f.transform is not None}
    statistics = replace(merged, logs=shards.identity(), transforms=transforms)
    logger.info("statistics of %d rows in %.1fs", statistics.rows, time.perf_counter() - started)
    return statistics
