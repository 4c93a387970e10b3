"""``keep_best_epoch = true`` under [training]: export the weights of the epoch that validated best, not the last's.

An audit's second default epoch took a Criteo-like log's validation log loss from 0.535 to 0.623, worse than the
constant predictor's 0.548, and the last epoch's weights were exported all the same
(training/fitting/epoch_validation.py said so in one line). With the key set, a copy of the weights is taken after
each epoch of the main phase whose validation loss is the lowest so far, and put back into the model after that
phase's last epoch: a later phase (an adversary's) trains on from it, and the checkpoint, hence ``ctr export``,
holds it. Off by default: the shipped esmm keeps its second epoch for its pCVR level (docs/cvr.md, "One epoch or
two"), which its first has the lower log loss.

An epoch is judged by the validation value of what the model descends: the CTR log loss an epoch's line shows
(``judged_by``: a slot-1 model's at each row's logged slot, as it trains), plus, for a model that records a
``ctcvr_logloss`` (the ESMM family), the CTCVR's too (``CTCVR_JUDGED_BY``). ESMM's loss is BCE(click, pCTR) +
BCE(click x conversion, pCTCVR), both over every impression, equally weighted: an epoch whose pCTCVR got worse by
more than its pCTR got better is a worse model by its own objective, and the CTCVR tower can overfit the rare
conversions while the CTR tower does not (training/evaluation/constant_baseline.py). A slot-1 model's CTCVR log
loss is of its pCTR at the logged slot times its pCVR (``ctcvr_logloss_logged_b``), the product it trains on and
the figure the worse-than-a-constant warning judges too; its ``ctcvr_logloss``, of the served (slot-1) pCTCVR, is
recorded beside it.

The copy is of ``state_dict()`` on the CPU (one more copy of the weights in memory). Streamed by several
processes, only rank 0 scores; its verdict (``shared``) reaches every process, which keeps and restores its own
copy: the replicas stay equal (``check_replicas_agree``) without sending the weights. Only the weights are put
back, not an optimiser's moments: the main phase's optimiser takes no step after it, and a later phase's
(adversarial_ctr's bias phase steps the adversary's Adam of the main phase) goes on from the last epoch's.

``early_stop_patience = N`` (N >= 1; 0, the default, never stops) ends the main phase after N epochs in a row
without a new best, Keras' EarlyStopping and Lightning's ``patience``: on a Criteo-like log an epoch costs minutes
and its second was already the worse (docs/scale.md, where patience 1 trained 2 of 6 epochs to the same weights).
The kept epoch's weights are put back then, as after a last epoch, and a later phase (an adversary's) still trains
its configured epochs from them. It needs ``keep_best_epoch = true`` beside it (``refuse_early_stop`` in
training/fitting/settings.py) rather than implying it: a run stopped early ends ``N`` epochs past its best, each
judged worse, so exporting its last would export a model known to be worse than one it held (Keras' own default,
``restore_best_weights=False``, does that); and with the best kept implicitly, model.json's
``training.keep_best_epoch`` would read false of a run that kept its best. The stop counts only from a judged
epoch: with no held-out row, or no finite loss yet, every configured epoch trains.

Streamed, every process must leave the main phase after the same epoch, or the next phase's collective
operations wait for a process still in the last one: the stop is decided from the kept epoch alone, which every
process takes from rank 0's shared verdict, so each process reaches the same decision with no other message.

What model.json records of the epochs: ``training.epochs`` is the setting (after a small log's scaling), the
epochs configured; ``metrics.kept_epoch`` says which was kept of them (``epoch``, ``epochs``), how many trained
(``epochs_trained``), and whether the patience ran out (``stopped_early``, by ``early_stop_patience``);
``metrics.validation_by_epoch`` holds one record per epoch trained.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from training.fitting.epoch_validation import CTCVR_JUDGED_BY, EpochValidation, judged_by

logger = logging.getLogger(__name__)

KEPT = "kept_epoch"  # the metrics key of what was kept, and why


def kept_by(record: dict[str, float]) -> tuple[str, float] | None:
    """(what an epoch's ``record`` is judged by, its value): the CTR log loss, plus the CTCVR's where the model
    records one (``judged_by`` of ``CTCVR_JUDGED_BY``); None for a model that records no log loss."""
    key = judged_by(record)
    if key is None:
        return None
    ctcvr = judged_by(record, CTCVR_JUDGED_BY)
    keys = [key] + ([ctcvr] if ctcvr is not None else [])
    return " + ".join(keys), float(sum(record[k] for k in keys))


def say_nothing_judged(patience: int = 0) -> None:
    """The warning of a run with the key set but no held-out row: no epoch is judged, and the user, who asked for
    the best (and an early stop, with ``patience``), would otherwise get the last without a word."""
    logger.warning(
        "keep_best_epoch = true, but no row is held out for validation (validation_fraction = 0, or a log too small "
        "for one): no epoch is judged, so the last epoch's weights are checkpointed and exported%s",
        f", and early_stop_patience = {patience} stops nothing: every configured epoch trains" if patience else "",
    )


class KeptEpoch:
    """``run_phases``' ``after_epoch`` with ``keep_best_epoch``: ``validated`` scores the epoch (None on a
    process that does not score, streamed ranks other than 0), and the weights of the best epoch so far are
    copied; when the main phase ends, after its last epoch (``epochs``) or ``patience`` epochs after the kept one
    (0: never early), the copy replaces the model's weights and the call returns True where the phase stops early.
    ``shared(verdict)`` is rank 0's verdict on every process (the identity for one process)."""

    def __init__(
        self,
        model: nn.Module,
        validated: EpochValidation | None,
        epochs: int,
        shared: Callable[[bool], bool] = lambda verdict: verdict,
        patience: int = 0,
    ) -> None:
        self.model, self.validated, self.epochs, self.shared = model, validated, epochs, shared
        self.patience = patience
        self.state: dict[str, torch.Tensor] | None = None
        self.epoch = 0  # the epoch whose weights are kept (1-based; 0: none yet)
        self.trained = 0  # the epochs of the main phase trained so far
        self.best = math.inf

    def __call__(self, epoch: int, training_loss: float) -> bool:
        better = False
        if self.validated is not None:
            self.validated(epoch, training_loss)
            judged = kept_by(self.validated.records[-1])
            better = judged is not None and judged[1] < self.best  # nan is never better; ties keep fewer epochs
            if better:
                self.best = judged[1]
        if self.shared(better):
            self.epoch = epoch + 1
            self.state = {name: value.detach().to("cpu", copy=True) for name, value in self.model.state_dict().items()}
        self.trained = epoch + 1
        stops = self.stopped_early()  # from the shared verdicts alone: the same on every process
        if self.trained == self.epochs or stops:
            if self.state is not None and self.epoch != self.trained:
                self.model.load_state_dict(self.state)
            self.state = None  # the memory of the copy, for a later phase's
            self.say()
        return stops

    def stopped_early(self) -> bool:
        """Whether ``patience`` epochs have passed since the kept one before the main phase's last."""
        waited = self.trained - self.epoch
        return bool(self.patience and self.epoch and waited >= self.patience and self.trained < self.epochs)

    def say(self) -> None:
        """One line saying which epoch's weights the model now holds, and why (and why it stopped, if early)."""
        record = self.record()
        if record is None:
            return
        if record["stopped_early"]:
            logger.info(
                "early stop after epoch %d of %d: no lower validation %s for %d epoch%s (early_stop_patience = %d); "
                "keeping epoch %d, its %.5f the lowest (the last epoch's %.5f)",
                record["epochs_trained"],
                record["epochs"],
                record["judged_by"],
                self.patience,
                "" if self.patience == 1 else "s",
                self.patience,
                record["epoch"],
                record["validation_loss"],
                record["last_epoch_validation_loss"],
            )
            return
        logger.info(
            "keep_best_epoch: keeping epoch %d of %d, its validation %s %.5f the lowest (the last epoch's %.5f)",
            record["epoch"],
            record["epochs"],
            record["judged_by"],
            record["validation_loss"],
            record["last_epoch_validation_loss"],
        )

    def record(self) -> dict | None:
        """model.json's ``kept_epoch``: which epoch, of how many configured and trained, by which validation loss
        and its value beside the last trained epoch's, and whether ``early_stop_patience`` ended the main phase;
        None where nothing was judged (no validation rows here, or no finite loss)."""
        if self.validated is None or not self.epoch:
            return None
        by, loss = kept_by(self.validated.records[self.epoch - 1])  # type: ignore[misc]
        _, last = kept_by(self.validated.records[-1])  # type: ignore[misc]
        return {
            "epoch": self.epoch,
            "epochs": self.epochs,
            "epochs_trained": self.trained,
            "judged_by": by,
            "validation_loss": loss,
            "last_epoch_validation_loss": last,
            "early_stop_patience": self.patience,
            "stopped_early": self.stopped_early(),
        }

    def summary(self) -> dict:
        """What the run's metrics take from it: ``kept_epoch`` and the kept epoch's ``training_loss`` (the
        main phase's), nothing where nothing was kept."""
        record = self.record()
        if record is None:
            return {}
        return {KEPT: record, "training_loss": self.validated.records[self.epoch - 1]["training_loss"]}  # type: ignore[union-attr]
