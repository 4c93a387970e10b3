"""The training loop: Adam over shuffled minibatches of a model that owns its loss and metrics.

Any model with ``loss(batch) -> Tensor``, ``forward(categorical, numeric) -> dict`` and a static
``metrics(predictions, labels) -> dict`` trains here; the loop knows no model by name. A model that
trains differently (alternating optimisers, a phase after the main one) defines
``training_phases(config) -> list[TrainingPhase]``; one whose inference path holds values fixed from
the training data (e.g. the bias input b) defines ``fix_constants(tensors)``, called before training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from common.output_means import output_means
from common.plural import counted
from training.evaluation.constant_baseline import (
    difference_from_constant,
    difference_key,
    label_rate,
    training_constant,
)
from training.evaluation.metrics import log_loss
from training.fitting.dataset import ImpressionTensors
from training.fitting.embedding_optimizer import adam
from training.fitting.epoch_validation import AGAINST_CONSTANT, BY_EPOCH, EpochValidation, judged_by
from training.fitting.kept_epoch import KeptEpoch, say_nothing_judged
from training.fitting.settings import TrainingConfig
from training.logs.ctcvr_label import click_and_conversion
from training.position_ctr import NoTopSlot

if TYPE_CHECKING:  # training/fitting/distributed.py imports this module
    from training.fitting.distributed import Processes

logger = logging.getLogger(__name__)


class TrainingDiverged(ValueError):
    """An epoch's loss is not finite: the weights are nan or inf from then on. A ValueError, so that the CLI
    says it in one line (cli/errors.py); the run wrote a checkpoint with a null logloss, or ended in a bare
    ZeroDivisionError in a model's summary of what it learnt."""


@dataclass(frozen=True)
class TrainingPhase:
    """``epochs`` passes over the training rows, calling ``step(minibatch) -> loss`` on each minibatch."""

    name: str
    epochs: int
    step: Callable[[dict[str, torch.Tensor]], float]


# (loss_of, batch) -> loss: set while training under DDP, None otherwise (see descend)
LOSS_ROUTE: ContextVar[Callable[..., torch.Tensor] | None] = ContextVar("LOSS_ROUTE", default=None)


def default_phases(model: nn.Module, config: TrainingConfig) -> list[TrainingPhase]:
    """Adam (``config.embedding_optimizer``'s) on ``model.loss`` for ``config.epochs``."""
    optimizer = adam(model, model.parameters(), config.learning_rate, config.weight_decay, config.embedding_optimizer)

    return [TrainingPhase("train", config.epochs, lambda batch: descend(optimizer, model.loss, batch))]


def descend(
    optimizer: torch.optim.Optimizer, loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor], batch: dict
) -> float:
    """One optimiser step on ``loss_of(batch)`` (only the optimiser's parameters move); returns the loss.

    Under DistributedDataParallel the loss is computed through the DDP wrapper that ``LOSS_ROUTE``
    holds (training/fitting/distributed.py), so that its backward pass averages the gradients over processes.
    """
    optimizer.zero_grad(set_to_none=True)
    route = LOSS_ROUTE.get()
    loss = loss_of(batch) if route is None else route(loss_of, batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def validation_cut(rows: int, validation_fraction: float) -> int:
    """The first held-out row of ``rows`` in time order: the latest ``validation_fraction`` are held out (in
    memory and streamed alike)."""
    return round(rows * (1.0 - validation_fraction))


def training_rows_words(validation_fraction: float) -> str:
    """What the training rows are, for a message about them: the first part of the log, in its rows' order (time
    order where the log is in it: a log without ``ts``, Criteo's, was said to be split "in time order")."""
    if not validation_fraction:
        return "the training rows (every row: validation_fraction is 0)"
    return f"the training rows (the first {(1.0 - validation_fraction) * 100:g}% of the log's rows)"


def fix_model_constants(model: nn.Module, tensors: dict[str, torch.Tensor], validation_fraction: float) -> None:
    """``model.fix_constants(tensors)`` where it has one (``tensors``: training rows, or a sample of them); a
    slot-1 model's refusal of rows without position 1 names them as the training rows, which a log with
    position 1 in its held-out tail alone lacks without knowing it."""
    fix_constants = getattr(model, "fix_constants", None)
    if fix_constants is None:
        return
    try:
        fix_constants(tensors)
    except NoTopSlot as error:
        raise ValueError(error.said_of(training_rows_words(validation_fraction))) from None


def split_by_time(data: ImpressionTensors, validation_fraction: float) -> tuple[ImpressionTensors, ImpressionTensors]:
    """Training rows first, the latest ``validation_fraction`` of rows (logs are in time order) last."""
    cut = validation_cut(len(data), validation_fraction)
    return data.take(slice(0, cut)), data.take(slice(cut, len(data)))


PREDICTED_ROWS = 65536  # rows scored at a time


@torch.no_grad()
def predict(model: nn.Module, data: ImpressionTensors, batch_size: int = PREDICTED_ROWS) -> dict[str, np.ndarray]:
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for batch in data.minibatches(batch_size):
        for name, value in model(batch["categorical"], batch["numeric"]).items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def ctcvr_labels(data: ImpressionTensors) -> np.ndarray:
    """Click and conversion, the label a ``ctcvr_logloss`` is measured against (models/parts.py)."""
    return click_and_conversion(data.tensors["click"].numpy(), data.tensors["conversion"].numpy())


def constant_rates(train: ImpressionTensors) -> dict[str, float]:
    """The training rows' click rate (``ctr``) and click-and-conversion rate (``ctcvr``): what the constant
    predictor a model's validation log loss is judged against predicts (training/evaluation/constant_baseline.py)."""
    return {"ctr": label_rate(train.tensors["click"].numpy()), "ctcvr": label_rate(ctcvr_labels(train))}


def evaluate(model: nn.Module, data: ImpressionTensors, rates: dict[str, float] | None = None) -> dict[str, Any]:
    """The model's metrics on ``data`` (``rates``: as ``evaluate_chunks``); a model whose tensors are not
    impression rows (e.g. grouped by query) evaluates them itself through its ``validation_metrics(tensors)``
    hook."""
    hook = getattr(model, "validation_metrics", None)
    if hook is not None:
        return {k: float(v) for k, v in hook(data.tensors).items()}
    return evaluate_chunks(model, [data], rates)


def evaluate_chunks(
    model: nn.Module, chunks: Iterable[ImpressionTensors], rates: dict[str, float] | None = None
) -> dict[str, Any]:
    """The model's metrics over impression rows that arrive in chunks (a streamed held-out set); a slot-1
    model's also ``ctr_logloss_logged_b``, its pCTR with the bypass at each row's logged slot's b against the
    clicks, the log loss its validation is judged by (``ctr evaluate --logs``'s ``ctr_logloss_at_slot`` is
    another figure: the served slot-1 pCTR times the logged slot's ratio), and, where it records a
    ``ctcvr_logloss``, ``ctcvr_logloss_logged_b``: that pCTR times its pCVR against the clicks and conversions.
    With ``rates`` (``constant_rates``: the training rows'), each judged log loss minus the constant's
    (``differences_from_constant``)."""
    from training.models.position_bypass import serves_slot1, slot1_predictions  # (the models import this module)

    predictions: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[np.ndarray]] = {"click": [], "conversion": []}
    at_slot: list[np.ndarray] = []
    slot1 = serves_slot1(model)
    for chunk in chunks:
        if slot1:  # its outputs and its pCTR at the logged slots, the CTR tower run once for both
            model.eval()
            predicted = [slot1_predictions(model, batch) for batch in chunk.minibatches(PREDICTED_ROWS)]
            outputs = [served for served, _ in predicted]
            at_slot.extend(logged for _, logged in predicted)
        else:
            outputs = [predict(model, chunk)]
        for batch_outputs in outputs:
            for name, value in batch_outputs.items():
                predictions.setdefault(name, []).append(value)
        for name, parts in labels.items():
            parts.append(chunk.tensors[name].numpy())
    if not labels["click"]:
        return {}
    joined = {name: np.concatenate(parts) for name, parts in predictions.items()}
    click, conversion = (np.concatenate(labels[name]) for name in ("click", "conversion"))
    metrics = model.metrics(joined, {"click": click, "conversion": conversion})
    ctcvr = click_and_conversion(click, conversion)
    # (labels, predictions) of each log loss a model is judged by: the models' ctr_logloss and ctcvr_logloss score
    # their pctr and pctcvr (models/parts.py multitask_metrics, models/adversarial_ctr.py)
    scored_outputs = {"ctr_logloss": (click, "pctr"), "ctcvr_logloss": (ctcvr, "pctcvr")}
    scored = {key: (y, joined[output]) for key, (y, output) in scored_outputs.items() if output in joined}
    if at_slot:
        logged_pctr = np.concatenate(at_slot)
        scored["ctr_logloss_logged_b"] = (click, logged_pctr)
        if "ctcvr_logloss" in metrics and "pcvr" in joined:  # pCTCVR at the logged slot, as it trains
            scored["ctcvr_logloss_logged_b"] = (ctcvr, logged_pctr * joined["pcvr"].astype(np.float64))
        logged = ("ctr_logloss_logged_b", "ctcvr_logloss_logged_b")
        metrics |= {key: log_loss(*scored[key]) for key in logged if key in scored}
    # the served mean's baseline (common/output_means.py): the model's own, not the logs' click rate
    metrics = {k: float(v) for k, v in metrics.items()} | output_means(joined)
    return metrics | (differences_from_constant(metrics, scored, rates) if rates else {})


def differences_from_constant(
    metrics: dict[str, float], scored: dict[str, tuple[np.ndarray, np.ndarray]], rates: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """For the CTR log loss an epoch is judged by and the CTCVR one beside it (``judged_by``), that log loss minus
    the constant ``rates``' (``ctr``, ``ctcvr``) over the same rows, with its interval and the positives it rests on
    (``ctr_logloss_logged_b_minus_constant``: ``difference_from_constant``), the noise the warning of a model
    predicting worse than a constant says (training/pipeline.py ``say_validation``). The rows' own differences are
    not kept: each epoch's record holds these figures alone."""
    differences = {}
    for label, keys in AGAINST_CONSTANT.items():
        key = judged_by(metrics, keys)
        if key in scored and label in rates:
            differences[difference_key(key)] = difference_from_constant(*scored[key], rates[label])
    return differences


def fit(model: nn.Module, data: ImpressionTensors, config: TrainingConfig, progress: bool = True) -> dict[str, Any]:
    """Train ``model`` in place; returns its metrics on the held-out latest rows, with those after each epoch
    of the main phase under ``validation_by_epoch`` (training/fitting/epoch_validation.py)."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train, validation = split_by_time(data, config.validation_fraction)
    fix_model_constants(model, train.tensors, config.validation_fraction)
    steps = (len(train) + config.batch_size - 1) // config.batch_size
    phases = model_phases(model, config)
    # impression rows (a query-grouped model's clicks are padded): judged against the training rows' rates
    rates = None if hasattr(model, "validation_metrics") else constant_rates(train)

    def score() -> dict[str, Any]:
        return evaluate(model, validation, rates)

    validated = EpochValidation(score, phases[0].epochs) if len(validation) else None
    kept = None
    if config.keep_best_epoch and validated:
        kept = KeptEpoch(model, validated, phases[0].epochs, patience=config.early_stop_patience)
    elif config.keep_best_epoch:
        say_nothing_judged(config.early_stop_patience)
    main_loss = run_phases(
        model, phases, lambda _: train.minibatches(config.batch_size, generator), steps, progress, kept or validated
    )
    metrics: dict = {}
    if validated is not None:  # the last (or kept) epoch's scores are the model's unless a later phase moved it
        epoch = kept.epoch if kept else 0
        metrics = validated.final(epoch) if len(phases) == 1 and validated.records else score()
        metrics[BY_EPOCH] = validated.records
        if rates is not None:
            labels = {"ctr": validation.tensors["click"].numpy(), "ctcvr": ctcvr_labels(validation)}
            metrics |= training_constant(rates, labels, ctcvr="ctcvr_logloss" in metrics)
    metrics["training_loss"] = main_loss  # the last epoch of the first (main) phase
    return metrics | (kept.summary() if kept else {})


def model_phases(model: nn.Module, config: TrainingConfig) -> list[TrainingPhase]:
    """The model's own ``training_phases(config)``, or Adam on its loss."""
    phases = getattr(model, "training_phases", None)
    return phases(config) if phases is not None else default_phases(model, config)


def run_phases(
    model: nn.Module,
    phases: list[TrainingPhase],
    epoch_batches: Callable[[int], Iterable[dict[str, torch.Tensor]]],
    steps: int,
    progress: bool = True,
    after_epoch: Callable[[int, float], bool | None] | None = None,
    group: Processes | None = None,
) -> float:
    """Each phase's epochs over ``epoch_batches(epoch)`` (``steps`` minibatches each); returns the mean
    loss per row of the first (main) phase's last epoch. ``after_epoch(epoch, loss)`` is called after each
    epoch of the main phase (the validation metrics of each: it must leave the weights and the RNG alone, but
    for keep_best_epoch's putting back the kept epoch's weights after the last, training/fitting/kept_epoch.py); its
    True ends the main phase there (early_stop_patience's early stop), and a later phase runs as configured.
    ``group``: the processes of a streamed run, each over its own rows: each epoch's loss is the mean of theirs
    (``after_epoch``'s too), a phase's said once by rank 0 (each process said its own, two contradicting lines
    for one model); every process reads as many rows per epoch, so the mean of their means is the mean per row of
    all, the in-memory figure."""
    loss, main_loss = float("nan"), float("nan")
    for phase in phases:
        trained = 0
        for epoch in range(phase.epochs):
            model.train()
            total, count = 0.0, 0
            batches = epoch_batches(epoch)
            if progress:
                from tqdm import tqdm

                description = f"{phase.name} {epoch + 1}/{phase.epochs}"
                batches = tqdm(batches, total=steps, desc=description, unit="batch")
            for batch in batches:
                rows = batch["click"].shape[0]
                total += phase.step(batch) * rows
                count += rows
            if not math.isfinite(total):
                raise TrainingDiverged(
                    f"training diverged: epoch {epoch + 1}'s loss is {total / max(count, 1)}"
                    + (f" (phase {phase.name})" if len(phases) > 1 else "")
                    + "; lower [training] learning_rate"
                )
            # every epoch's, not only the last's: keep_best_epoch records the kept epoch's
            # (training/fitting/kept_epoch.py)
            loss = group.mean(total / max(count, 1)) if group else total / max(count, 1)
            logger.debug("%s epoch %d/%d: loss %.5f", phase.name, epoch + 1, phase.epochs, loss)
            trained = epoch + 1
            if after_epoch is not None and phase is phases[0] and after_epoch(epoch, loss):
                break
        if phase.epochs and (group is None or group.is_main):
            epochs = (
                f"{trained} of {counted(phase.epochs, 'epoch')} (an early stop)"
                if trained < phase.epochs
                else counted(trained, "epoch")
            )
            logger.info("%s: %s, last epoch's loss %.5f", phase.name, epochs, loss)
        if phase is phases[0]:
            main_loss = loss
    return main_loss
