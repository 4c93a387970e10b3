"""The clicks and conversions on each side of the validation cut, and what a trainer refuses or warns of in them.

A model learns from the training rows alone, the first part of the log in time order (``validation_cut``): a
log whose clicks all lie in its held-out tail trained on no click (last epoch's loss 0.00001, a served pCTR of
8e-5) while the whole log's count said 244 clicks, and a log whose clicks never converted trained a pCVR of
1e-4 that model.json's metrics could not tell (a ctcvr_logloss of 5e-6, null CVR AUCs). Both trainers count
here, the in-memory one from its tensors, the streamed one span by span (``LabelCounts`` add up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from common.plural import counted
from training.evaluation.constant_baseline import training_constant
from training.fitting.fit import training_rows_words, validation_cut
from training.logs.label_checks import refuse_one_class

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelCounts:
    rows: int = 0
    clicks: int = 0
    conversions: int = 0  # on clicked rows (a conversion without a click is refused when the log is read)

    @classmethod
    def of(cls, click: np.ndarray, conversion: np.ndarray) -> LabelCounts:
        clicked = np.asarray(click, dtype=np.float64) == 1
        converted = clicked & (np.asarray(conversion, dtype=np.float64) == 1)
        return cls(int(clicked.size), int(clicked.sum()), int(converted.sum()))

    def __add__(self, other: LabelCounts) -> LabelCounts:
        return LabelCounts(self.rows + other.rows, self.clicks + other.clicks, self.conversions + other.conversions)


@dataclass(frozen=True)
class SplitLabels:
    training: LabelCounts
    held_out: LabelCounts
    validation_fraction: float

    def constant_rates(self) -> dict[str, float]:
        """The training rows' click rate (``ctr``) and click-and-conversion rate (``ctcvr``), as the in-memory
        trainer's ``constant_rates`` (training/fitting/fit.py) from its tensors."""
        rows = self.training.rows
        return {"ctr": self.training.clicks / rows, "ctcvr": self.training.conversions / rows}

    def constant_reference(self, ctcvr: bool) -> dict[str, float]:
        """model.json's constant predictor (``training_constant``) from the counts alone, as the streamed trainer
        records it without reading the held-out rows again: the held-out rate stands for their labels, the log
        loss of a constant on them being that of the rate as one expected label (``ctcvr``: the
        click-and-conversion rate's too)."""
        held_out = {"ctr": self.held_out.clicks, "ctcvr": self.held_out.conversions}
        as_labels = {label: np.array([n / self.held_out.rows]) for label, n in held_out.items()}  # one expected label
        return training_constant(self.constant_rates(), as_labels, ctcvr)

    @classmethod
    def of(cls, click: np.ndarray, conversion: np.ndarray, validation_fraction: float) -> SplitLabels:
        """The counts of labels in time order, cut where the trainer cuts them."""
        cut = validation_cut(len(click), validation_fraction)
        training, held_out = (
            LabelCounts.of(click[:cut], conversion[:cut]),
            LabelCounts.of(click[cut:], conversion[cut:]),
        )
        return cls(training, held_out, validation_fraction)

    def refuse_one_class(self, logs: str | Path) -> None:
        """ValueError when every training row was clicked, or none was (``refuse_one_class``), saying what the
        held-out tail holds: clicks there alone are a log whose clicks start late, or a join that lost the older."""
        tail = self.held_out
        said = (
            f" (the held-out tail, the latest {self.validation_fraction * 100:g}%, holds "
            f"{counted(tail.clicks, 'click')} of its {tail.rows}: train on a window whose clicks span it, or mend the "
            "join of the older rows)"
            if tail.rows and tail.clicks not in (0, tail.rows)
            else ""
        )
        refuse_one_class(
            logs, self.training.clicks, self.training.rows, f"{training_rows_words(self.validation_fraction)} of", said
        )

    def warn_of_conversions(self, logs: str | Path, model: nn.Module) -> None:
        """One warning line when a model that serves pcvr trains on clicks none of which converted, or all of
        them: it learns a constant pCVR (a log early in a campaign may have none yet: no refusal)."""
        counts = self.training
        if "pcvr" not in getattr(model, "output_names", ()) or not counts.clicks:
            return
        if counts.conversions == 0:
            said, learns, join = "none of their", "0", "a conversion join that lost its rows?"
        elif counts.conversions == counts.clicks:
            said, learns, join = "every one of their", "1", "a conversion join that kept only the converted clicks?"
        else:
            return
        logger.warning(
            "%s of %s: %s %d clicks converted, so pcvr learns %s (%s) and model.json's cvr metrics cannot say so",
            training_rows_words(self.validation_fraction),
            logs,
            said,
            counts.clicks,
            learns,
            join,
        )
