"""The validation metrics after every epoch, and a line when a later epoch made them worse.

An audit trained `ctr new`'s defaults (2 epochs) on Criteo- and Avazu-like logs: the second epoch overfitted
(validation log loss 0.535 -> 0.623, AUC 0.607 -> 0.541) and the metrics, computed once after the last epoch,
could not show it. Each epoch of the main phase (the one ``[training] epochs`` counts) is now scored on the
validation rows, logged as one line and recorded in model.json (``metrics.validation_by_epoch``); the last
epoch's record is the model's final metrics, so the extra cost is one pass over the validation rows per
earlier epoch. Scoring runs under ``torch.no_grad()`` in eval mode, in the rows' order, drawing no random
number: the weights, the batches and so model.onnx's bytes are those of a run without it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

BY_EPOCH = "validation_by_epoch"  # the metrics key of the per-epoch records
# the log loss an epoch is judged by, the first a model records: a slot-1 model's pCTR at each row's logged
# slot (its plain ctr_logloss also counts the lower slots' examination as error), an impression model's
# pCTR, a retrieval model's click score
JUDGED_BY = ("ctr_logloss_logged_b", "ctr_logloss", "click_logloss")
# the CTCVR log loss of a model that records one (the ESMM family), the first it records: a slot-1 model's pCTCVR at
# each row's logged slot (its pCTR there times its pCVR, the product it trains on), else its pCTCVR. A slot-1 model's
# served (top-slot) pCTCVR against every slot's clicks and conversions over-predicts the lower slots': 1.80 x the
# rate in the auction's retraining windows, where it drew most of the "worse than a constant" warnings
# (docs/auction.md, "The retraining's 'predicts worse than a constant' warnings")
CTCVR_JUDGED_BY = ("ctcvr_logloss_logged_b", "ctcvr_logloss")
# the judged log losses a constant predictor is the reference for, by the label whose rate it predicts (the training
# rows': training/evaluation/constant_baseline.py)
AGAINST_CONSTANT = {"ctr": JUDGED_BY, "ctcvr": CTCVR_JUDGED_BY}
LOGGED_TOO = ("ctr_auc", "click_auc")  # in each epoch's line beside it, where the model has them, then the CTCVR's


class EpochValidation:
    """Called after each epoch of the main phase (``run_phases``' ``after_epoch``): scores the model with
    ``score()`` and keeps ``{"epoch", "training_loss", **metrics}`` for each."""

    def __init__(self, score: Callable[[], dict[str, float]], epochs: int) -> None:
        self.score = score
        self.epochs = epochs
        self.records: list[dict[str, float]] = []

    def __call__(self, epoch: int, training_loss: float) -> None:
        metrics = self.score()
        self.records.append({"epoch": epoch + 1, "training_loss": training_loss, **metrics})
        key = judged_by(metrics)
        names = (key, *LOGGED_TOO, judged_by(metrics, CTCVR_JUDGED_BY))
        shown = [f"{name} {metrics[name]:.5f}" for name in names if name in metrics]
        logger.info("validation after epoch %d/%d: %s", epoch + 1, self.epochs, ", ".join(shown) or "no metrics")

    def final(self, epoch: int = 0) -> dict[str, float]:
        """The metrics after ``epoch`` (1-based), the last by default: the model's, when no phase follows the
        main one (``epoch``: the one keep_best_epoch kept, training/fitting/kept_epoch.py)."""
        final = dict(self.records[epoch - 1 if epoch else -1])
        del final["epoch"], final["training_loss"]
        return final


def judged_by(metrics: dict, keys: tuple[str, ...] = JUDGED_BY) -> str | None:
    """The first of ``keys`` that ``metrics`` records: the log loss an epoch is judged by (``JUDGED_BY``), or the
    CTCVR's judged beside it (``CTCVR_JUDGED_BY``); None for a model that records none."""
    return next((key for key in keys if key in metrics), None)


def say_best_epoch(records: list[dict[str, float]], config_path: Path, batch_size: int) -> bool:
    """One line when the last epoch's validation log loss is worse than an earlier epoch's: which epoch was best,
    by how much, and the ``epochs = N`` to try in ``config_path``, with the ``batch_size`` trained with (a config
    that sets either is not scaled to a small log: epochs alone would train 1,024-row batches). True when it said
    so. INFO, not a warning: a lower log loss is not always the better model. The default esmm's second epoch
    raises it (0.1695 -> 0.1732) and lowers the uniform held-out day's CTR AUC (0.668 -> 0.648), but brings its
    pCVR from x1.47 the truth to x1.09 (docs/cvr.md "One epoch or two"): which to keep is the user's call, and a
    warning on every ``make run`` would have said the shipped config was a mistake. A model predicting worse than
    a constant is the warning (constant_baseline.py)."""
    key = judged_by(records[-1]) if records else None
    if key is None or len(records) < 2:
        return False
    losses = [record[key] for record in records]
    if not all(math.isfinite(loss) for loss in losses):
        return False
    best = min(range(len(losses)), key=losses.__getitem__)  # the first of equal ones: fewer epochs
    last = losses[-1]
    if last <= losses[best]:
        return False
    logger.info(
        "validation %s after the last epoch (%d) is %.5f, worse by %.5f (%.1f%%) than epoch %d's %.5f, and the "
        "exported model is the last epoch's (or a later phase's): fewer epochs may predict better (`epochs = %d` "
        "and `batch_size = %d` under [training] in %s), though a later one can calibrate better: compare them with "
        "`ctr evaluate`",
        key,
        len(losses),
        last,
        last - losses[best],
        100 * (last - losses[best]) / losses[best],
        best + 1,
        losses[best],
        best + 1,
        batch_size,
        config_path,
    )
    return True
