"""Training a repository model end to end: logs -> fitted spec -> encoded tensors -> fit -> checkpoint.

Logs are the user's (``--logs`` with a feature spec) or, by default, simulated by the built-in world
with the config's [data] and [world] settings and written as Parquet like any other logs, so both
paths read, fingerprint and encode the same way.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from common.encoder import FeatureEncoder, fit_statistics
from common.features import FeatureSpec
from common.path_text import path_text
from common.repository import CONFIG_FILE, read_config
from training.config_world import world_of, world_spec
from training.evaluation.constant_baseline import (
    ConstantComparison,
    constant_key,
    difference_key,
    warn_if_worse_than_constant,
)
from training.fitting.checkpoint import TRAINED_UNDER, Checkpoint, trained_under
from training.fitting.dataset import ImpressionTensors
from training.fitting.epoch_validation import AGAINST_CONSTANT, BY_EPOCH, judged_by, say_best_epoch
from training.fitting.fit import fit, validation_cut
from training.fitting.kept_epoch import KEPT
from training.fitting.settings import SCALED_SETTINGS, TrainingConfig
from training.fitting.split_labels import SplitLabels
from training.logs.column_arrays import feature_columns
from training.logs.fingerprint import fingerprint
from training.logs.log_quality import warn_of_log_quality
from training.logs.reading import read_joined_logs
from training.model_config import ModelConfig
from training.models.kinds import trains_on
from training.models.position_bypass import position_summary
from training.models.registry import build_model
from training.training_files import checkpoint_path, own_logs_spec, refuse_non_displayed

logger = logging.getLogger(__name__)


def simulate_training_logs(config: ModelConfig, path: Path) -> Path:
    """Write the world's feedback-loop logs for ``config`` to ``path`` (Parquet) and return it."""
    from training.world import write_logs

    data = config.data
    logger.info("simulating %d days x %d requests (%s policy)", data.days, data.requests_per_day, data.policy)
    table = world_of(config).simulate(
        days=data.days, requests_per_day=data.requests_per_day, policy=data.policy, seed=data.seed
    )
    write_logs(table, path)
    return path


def training_data(
    config: ModelConfig, logs: Path | None, spec_path: Path | None, work_dir: Path
) -> tuple[Path, FeatureSpec, ImpressionTensors]:
    """(logs path, fitted spec, encoded tensors): the user's logs read with the spec at ``spec_path``
    (``own_logs_spec``), or the world's simulated into work_dir."""
    if logs is None:
        logs = simulate_training_logs(config, work_dir / config.name / "train.parquet")
    spec = FeatureSpec.from_toml(spec_path) if spec_path else world_spec(config)
    read = read_joined_logs(logs, spec)
    table = read.table
    warn_of_log_quality(table, spec, logs, read.rows)
    columns = feature_columns(table, spec)  # read once: the statistics are fitted on what is encoded
    # on every row, the validation tail included, as b's position CTRs are (docs/results.md: 4.2e-4 of AUC)
    spec = fit_statistics(spec, columns)
    return logs, spec, ImpressionTensors.from_table(table, FeatureEncoder(spec), columns=columns)


def train(
    name: str,
    root: Path = Path("models"),
    logs: Path | None = None,
    spec_path: Path | None = None,
    work_dir: Path = Path("artifacts"),
    progress: bool = True,
    non_displayed: Path | None = None,
) -> Checkpoint:
    """Train the repository model ``name`` and save its checkpoint under ``work_dir/name``
    (``non_displayed``: a retrieval model's table of non-displayed candidates, with ``logs``)."""
    config = ModelConfig.load(root, name)  # every setting checked before any log is read or simulated
    refuse_non_displayed(config.kind, non_displayed)
    if logs is not None:
        spec_path = own_logs_spec(root, name, config.kind, logs, spec_path, non_displayed)
    if trains_on(config.kind) == "queries":
        from training.retrieval_pipeline import train_retrieval

        own = (logs, non_displayed, spec_path) if logs is not None else None
        checkpoint = train_retrieval(config, progress, own)  # type: ignore[arg-type]
        say_validation(checkpoint.metrics, root / name / CONFIG_FILE, config.training.batch_size)
        checkpoint.save(checkpoint_path(work_dir, name))
        return checkpoint
    under = trained_under(config, simulated=logs is None)  # before the scaling below
    logs, spec, data = training_data(config, logs, spec_path, work_dir)
    logger.info("training %s (%s) on %d impressions from %s", name, config.kind, len(data), logs)
    training = training_settings(config, root, len(data))
    config = replace(config, training=training)  # the settings trained with are the ones recorded
    labels = SplitLabels.of(
        data.tensors["click"].numpy(), data.tensors["conversion"].numpy(), training.validation_fraction
    )
    labels.refuse_one_class(logs)
    warn_if_small(name, training, len(data), labels.training.clicks)
    model = build_model(config.kind, spec, config.model, seed=config.training.seed)
    labels.warn_of_conversions(logs, model)
    metrics = fit(model, data, config.training, progress=progress)
    say_validation(metrics, root / name / CONFIG_FILE, training.batch_size)
    record = {"impressions": len(data), TRAINED_UNDER: under}
    checkpoint = make_checkpoint(config, spec, model, metrics, logs, record, data.tensors)
    checkpoint.save(checkpoint_path(work_dir, name))
    return checkpoint


# each label a constant predicts the rate of (AGAINST_CONSTANT) in the warning's words: (its rate's, its positives)
LABEL_WORDS = {"ctr": ("click", "clicks"), "ctcvr": ("click-and-conversion", "click-and-conversions")}


def say_validation(metrics: dict, config_path: Path, batch_size: int) -> None:
    """What the validation metrics of a run trained with ``batch_size`` say against it: a last epoch worse than
    an earlier one (one INFO line, training/fitting/epoch_validation.py), a model no better than the training rows'
    click rate predicted for every row (a warning, training/evaluation/constant_baseline.py). A run that kept its best
    epoch said which (training/fitting/kept_epoch.py)."""
    if KEPT not in metrics:
        say_best_epoch(metrics.get(BY_EPOCH, []), config_path, batch_size)
    for label, keys in AGAINST_CONSTANT.items():
        whose, positives = LABEL_WORDS[label]
        key, constant = judged_by(metrics, keys), metrics.get(constant_key(f"{label}_logloss"))
        if key is not None and constant is not None:
            rate = (f"the training rows' {whose} rate", metrics[f"training_{label}"])
            difference = metrics.get(difference_key(key))
            what = config_path.parent.name
            comparison = ConstantComparison(
                what, key, metrics[key], constant, rate, "validation row", difference, positives
            )
            warn_if_worse_than_constant(comparison)


def make_checkpoint(
    config: ModelConfig,
    spec: FeatureSpec,
    model: nn.Module,
    metrics: dict,
    logs: Path,
    training: dict,
    tensors: dict[str, torch.Tensor],
) -> Checkpoint:
    """The checkpoint of a trained impression model; ``training`` adds to the recorded settings, with the start its
    bypass took where it asked for the explored one (``bypass_started``, training/models/explored_start.py), and
    ``tensors`` (the training rows, or a sample of them) are what its position summary is read on."""
    started = getattr(model, "bypass_started", None)
    return Checkpoint.trained(
        config,
        spec,
        model,
        metrics,
        fingerprint(logs),
        {"logs": path_text(logs), **training, **({"bypass_start": started} if started else {})},
        constants=dict(getattr(model, "constants", {})),  # values fixed into the exported graph
        position=position_summary(model, tensors, config.name),
    )


# A config that sets neither epochs nor batch_size (as `ctr new` writes it) trains for at least MIN_STEPS
# optimiser steps where the log allows (see README); one that sets either is trained as it says.
MIN_STEPS = 200
MIN_BATCH = 128  # a small log's batches shrink to no fewer rows than this ...
MAX_EPOCHS = 10  # ... and its epochs grow to no more than this
FEW_STEPS, FEW_POSITIVES = 100, 100  # fewer optimiser steps or clicks than these: warn


def training_settings(config: ModelConfig, root: Path, impressions: int, processes: int = 1) -> TrainingConfig:
    """The settings a model trains with on ``impressions`` rows, in memory or streamed by ``processes``:
    the config's, scaled to a small log (``scaled_to_data``) unless it sets epochs or batch_size itself."""
    explicit = SCALED_SETTINGS & set(read_config(root, config.name).get("training", {}))
    return config.training if explicit else scaled_to_data(config.training, impressions, processes)


def training_rows(config: TrainingConfig, impressions: int) -> int:
    """The rows before the validation cut, as the trainers cut them (one more where the two roundings differed:
    a small log's warning said 23 training impressions where its refusal counted 22)."""
    return validation_cut(impressions, config.validation_fraction)


def steps_of(config: TrainingConfig, impressions: int) -> int:
    return config.epochs * math.ceil(training_rows(config, impressions) / config.batch_size)


def scaled_to_data(config: TrainingConfig, impressions: int, processes: int = 1) -> TrainingConfig:
    """The config with enough optimiser steps for a small log: where ``epochs`` passes of ``batch_size``
    give fewer than MIN_STEPS steps, the batch shrinks towards MIN_BATCH (never grows) and then the
    epochs grow towards MAX_EPOCHS (never shrink) until MIN_STEPS is reached or both limits are hit. A
    shrunk batch is a multiple of ``processes``: streamed, each of them takes an equal part of it."""
    if steps_of(config, impressions) >= MIN_STEPS:
        return config
    rows = training_rows(config, impressions)
    batch = min(config.batch_size, max(MIN_BATCH, rows * config.epochs // MIN_STEPS))
    if batch < config.batch_size:  # up to a multiple of the processes (down would pass below MIN_BATCH)
        up = -(-batch // processes) * processes
        batch = up if up <= config.batch_size else max(processes, batch - batch % processes)
    per_epoch = math.ceil(rows / batch)
    epochs = max(config.epochs, min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))
    scaled = replace(config, batch_size=batch, epochs=epochs)
    logger.info(
        "small log (%d training rows): batch %d -> %d, epochs %d -> %d, so %d optimiser steps (rule: >= %d steps, "
        "batch >= %d, epochs <= %d)",
        rows,
        config.batch_size,
        batch,
        config.epochs,
        epochs,
        steps_of(scaled, impressions),
        MIN_STEPS,
        MIN_BATCH,
        MAX_EPOCHS,
    )
    return scaled


def warn_if_small(name: str, config: TrainingConfig, rows: int, clicks: int, rows_are: str = "impressions") -> None:
    """One warning line when the optimiser steps or the positives are few (``rows``: the log's examples,
    impressions or, for a retrieval model, requests; ``clicks``: those of its training rows, the held-out
    tail's left out, as what the model learns from)."""
    steps = steps_of(config, rows)
    if steps < FEW_STEPS or clicks < FEW_POSITIVES:
        logger.warning(
            "%s trains for only %d optimiser steps on %d clicks in %d training %s: expect a weak model and "
            "validation metrics with wide uncertainty (more logs, or `ctr evaluate %s --logs HELDOUT` for intervals)",
            name,
            steps,
            clicks,
            training_rows(config, rows),
            rows_are,
            name,
        )
