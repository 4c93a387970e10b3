"""``keep_best_epoch = true`` under [training]: export the weights of the epoch that validated best, not the last's.

An audit's second default epoch took a Criteo-like log's validation log loss from 0.535 to 0.623, worse than the
constant predictor's 0.548, and the last epoch's weights were exported all the same (training/epoch_validation.py
said so in one line). With the key set, a copy of the weights is taken after each epoch of the main phase whose
validation loss is the lowest so far, and put back into the model after that phase's last epoch: a later phase
(an adversary's) trains on from it, and the checkpoint, hence ``ctr export``, holds it. Off by default: the
shipped esmm keeps its second epoch for its pCVR level (docs/cvr.md, "One epoch or two"), which its first has
the lower log loss.

An epoch is judged by the validation value of what the model descends: the CTR log loss an epoch's line shows
(``judged_by``: a slot-1 model's at each row's logged slot, as it trains), plus, for a model that records a
``ctcvr_logloss`` (the ESMM family), that one too. ESMM's loss is BCE(click, pCTR) + BCE(click x conversion,
pCTCVR), both over every impression, equally weighted: an epoch whose pCTCVR got worse by more than its pCTR
got better is a worse model by its own objective, and the CTCVR tower can overfit the rare conversions while
the CTR tower does not (training/constant_baseline.py). A slot-1 model's ``ctcvr_logloss`` is of its served
(slot-1) pCTCVR, the figure the worse-than-a-constant warning judges too.

The copy is of ``state_dict()`` on the CPU (one more copy of the weights in memory). Streamed by several
processes, only rank 0 scores; its verdict (``shared``) reaches every process, which keeps and restores its own
copy: the replicas stay equal (``check_replicas_agree``) without sending the weights. No early stop: the
epochs a config trains stay the ones ``[training] epochs`` (or a small log's scaling) says, model.json's record
of them included.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from training.epoch_validation import EpochValidation, judged_by

logger = logging.getLogger(__name__)

KEPT = "kept_epoch"  # the metrics key of what was kept, and why


def kept_by(record: dict[str, float]) -> tuple[str, float] | None:
    """(what an epoch's ``record`` is judged by, its value): the CTR log loss, plus ``ctcvr_logloss`` where the
    model records one; None for a model that records no log loss."""
    key = judged_by(record)
    if key is None:
        return None
    keys = [key] + (["ctcvr_logloss"] if "ctcvr_logloss" in record else [])
    return " + ".join(keys), float(sum(record[k] for k in keys))


def say_nothing_judged() -> None:
    """The warning of a run with the key set but no held-out row: no epoch is judged, and the user, who asked for
    the best, would otherwise get the last without a word."""
    logger.warning(
        "keep_best_epoch = true, but no row is held out for validation (validation_fraction = 0, or a log too small "
        "for one): no epoch is judged, so the last epoch's weights are checkpointed and exported"
    )


class KeptEpoch:
    """``run_phases``' ``after_epoch`` with ``keep_best_epoch``: ``validated`` scores the epoch (None on a
    process that does not score, streamed ranks other than 0), and the weights of the best epoch so far are
    copied; after the main phase's last epoch (``epochs``) the copy replaces the model's weights.
    ``shared(verdict)`` is rank 0's verdict on every process (the identity for one process)."""

    def __init__(
        self,
        model: nn.Module,
        validated: EpochValidation | None,
        epochs: int,
        shared: Callable[[bool], bool] = lambda verdict: verdict,
    ) -> None:
        self.model, self.validated, self.epochs, self.shared = model, validated, epochs, shared
        self.state: dict[str, torch.Tensor] | None = None
        self.epoch = 0  # the epoch whose weights are kept (1-based; 0: none yet)
        self.best = math.inf

    def __call__(self, epoch: int, training_loss: float) -> None:
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
        if epoch + 1 == self.epochs and self.state is not None and self.epoch != self.epochs:
            self.model.load_state_dict(self.state)
        if epoch + 1 == self.epochs:
            self.state = None  # the memory of the copy, for a later phase's
            self.say()

    def say(self) -> None:
        """One line saying which epoch's weights the model now holds, and why."""
        record = self.record()
        if record is None:
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
        """model.json's ``kept_epoch``: which epoch, of how many, by which validation loss and its value beside
        the last epoch's; None where nothing was judged (no validation rows here, or no finite loss)."""
        if self.validated is None or not self.epoch:
            return None
        by, loss = kept_by(self.validated.records[self.epoch - 1])  # type: ignore[misc]
        _, last = kept_by(self.validated.records[-1])  # type: ignore[misc]
        return {
            "epoch": self.epoch,
            "epochs": self.epochs,
            "judged_by": by,
            "validation_loss": loss,
            "last_epoch_validation_loss": last,
        }

    def summary(self) -> dict:
        """What the run's metrics take from it: ``kept_epoch`` and the kept epoch's ``training_loss`` (the
        main phase's), nothing where nothing was kept."""
        record = self.record()
        if record is None:
            return {}
        return {KEPT: record, "training_loss": self.validated.records[self.epoch - 1]["training_loss"]}  # type: ignore[union-attr]
