"""The position bypass of a CTR tower, and the position regime a model's served pCTR holds for.

Moore et al. 2018 (arXiv 1804.06909) let the position-bias summary b, the CTR of the row's position
over the training window, enter the click logit only through a small Bypass network; at inference b
is fixed to the position-1 CTR, so the served pCTR is the click probability *at the top slot*. This
module gives the ESMM family's CTR tower the same bypass (the ``Bypass`` network of
``adversarial_ctr.py``, reused), so that every served probability holds for slot 1:

    ctr_logit = CTR tower(x) + W_BY . Bypass((b - mean b) / std b)      b: position CTR in training,
                                                                        the position-1 CTR exported
``position_summary`` is what ``model.json`` records under ``position``: the regime of the served
pCTR/pCTCVR ("slot1" with a bypass, "logged" for a position-blind model, whose pCTR is the average
over the logged positions) and, for "slot1", the CTR ratio of each slot to slot 1 that the model
learned: mean pCTR(x, b_k) / mean pCTR(x, b_1) over training rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from common.repository import LOGGED, SLOT1
from training.models.adversarial_ctr import Bypass
from training.models.bypass_start import start_bypass
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.position_ctr import bias_constants, listed_slots, position_ctr
from training.world.truth import sigmoid

logger = logging.getLogger(__name__)

RATIO_ROWS = 50_000  # training rows the learned slot ratios are averaged over


class PositionBypass(nn.Module):
    """b -> one logit term; b standardised by its training mean and spread; b fixed to slot 1 when absent."""

    def __init__(self, units: int = 1, activation: str = "tanh") -> None:
        super().__init__()
        self.bypass = Bypass(AdversarialCTRConfig(bypass_units=units, activation=activation))
        self.w_by = nn.Linear(units, 1, bias=False)
        self.register_buffer("b_inference", torch.tensor(0.0))  # the position-1 CTR, set by fix
        self.register_buffer("b_mean", torch.tensor(0.0))
        self.register_buffer("b_std", torch.tensor(1.0))

    def forward(self, b: torch.Tensor | None) -> torch.Tensor:
        """(B,) the bypass's logit term for each row's b; for the position-1 CTR when b is None, one term
        (shape ()) that adding broadcasts over the rows. That is the exported path: its inputs are all
        constants, so the export folds it into one number, where the term computed for each row's copy of
        b took 19 operators per run (shape, expand, standardise, the bypass network) for the same value:
        28 % of ONNX Runtime's run of a one-row batch (docs/serving-log.md, "The exported bypass term")."""
        if b is None:
            return self._term(self.b_inference.reshape(1)).reshape(())
        return self._term(b)

    def _term(self, b: torch.Tensor) -> torch.Tensor:
        return self.w_by(self.bypass((b.float() - self.b_mean) / self.b_std)).squeeze(-1)

    def fix(self, tensors: dict[str, torch.Tensor]) -> None:
        """b at inference := the position-1 CTR of the training rows' b, which is their position's CTR over the
        whole log, its validation tail included (``ImpressionTensors``: the summary is fitted before the split,
        as the numeric statistics are); b's standardisation from the training rows."""
        b_first, b_mean, b_std = bias_constants(tensors["position"].numpy(), tensors["b"].numpy())
        self.b_inference.fill_(b_first)
        self.b_mean.fill_(b_mean)
        self.b_std.fill_(b_std)

    def start_at(self, start: str, tensors: dict[str, torch.Tensor]) -> tuple[float, dict[str, Any] | None]:
        """Fit the bypass's term to each slot's logged click log-odds over the training rows ``tensors``
        (``bypass_start = "log"``) or to the explored rows' fall ("explored"), after ``fix``
        (training/models/bypass_start.py); (the CTR logit's offset that goes with it, the record of the start used)."""
        hidden, activation = self.bypass.mlp[0], self.bypass.mlp[1]
        b_mean, b_std = float(self.b_mean), float(self.b_std)
        return start_bypass(start, hidden, activation, self.w_by, b_mean, b_std, tensors)


@torch.no_grad()
def position_summary(model: nn.Module, tensors: dict[str, torch.Tensor], name: str = "NAME") -> dict[str, Any] | None:
    """model.json's ``position`` object for an impression model trained on ``tensors``; None for others
    (``name``: the repository model's, for a warning's next step).

    A model serves slot 1 when it has a position bypass (``bypass``), its pCTR at position CTR b being
    sigmoid(``slot_free_logit(categorical, numeric)`` + ``bypass_logit(b)``); the ratios are what that
    bypass learned, not the world's examination. The slot-free part is computed once for every slot."""
    if "position" not in tensors or "pctr" not in getattr(model, "output_names", ()):
        return None
    if not serves_slot1(model):
        return {"regime": LOGGED}
    slots = listed_slots(position_ctr(tensors["position"].numpy(), tensors["click"].numpy()))
    rows = slice(0, min(RATIO_ROWS, tensors["position"].shape[0]))
    categorical, numeric = tensors["categorical"][rows], tensors["numeric"][rows]
    was_training = model.training
    model.eval()
    slot_free = model.slot_free_logit(categorical, numeric)
    logits = [slot_free + model.bypass_logit(torch.full((len(numeric),), ctr)) for ctr in slots]
    means = [mean_probability(logit) for logit in logits]
    model.train(was_training)
    ratios = [mean / means[0] for mean in means]
    if slots[0] > 0:  # (no click at slot 1: no logged ratio to compare with)
        started = getattr(model, "bypass_started", None)  # an explored start's record: the start it fell back to
        start = started["used"] if started else getattr(getattr(model, "config", None), "bypass_start", "drawn")
        warn_of_ratios_against_the_log(ratios, [ctr / slots[0] for ctr in slots], name, start)
    return {"regime": SLOT1, "ctr_ratios": ratios}


def serves_slot1(model: nn.Module) -> bool:
    """Whether ``model``'s pCTR is the top slot's: it has a position bypass and the members that read it (a model
    without one of them serves no slot 1, docs/models.md)."""
    members = ("slot_free_logit", "bypass_logit")
    return getattr(model, "bypass", None) is not None and all(hasattr(model, member) for member in members)


@torch.no_grad()
def slot1_predictions(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A slot-1 model's outputs on a minibatch (its forward's: the top slot's pCTR), and its pCTR at each row's
    logged slot (its position CTR b), float64: what its log loss against the logged clicks is fairly measured on
    (its served pCTR, the top slot's, is also off by the lower slots' examination). Call it in eval mode.

    The CTR tower runs once for both where the model makes its outputs from ``slot_free_logit``
    (``served_outputs``, as the ESMM family and adversarial_ctr do); a model without that member runs it twice,
    in its forward and for the logged slots (each validation ran every slot-1 model's CTR tower twice so)."""
    categorical, numeric = batch["categorical"], batch["numeric"]
    slot_free = model.slot_free_logit(categorical, numeric)
    served = getattr(model, "served_outputs", None)
    outputs = model(categorical, numeric) if served is None else served(slot_free, categorical, numeric)
    logged = sigmoid((slot_free + model.bypass_logit(batch["b"])).numpy().astype(np.float64))
    return {name: value.numpy() for name, value in outputs.items()}, logged


def mean_probability(logit: torch.Tensor) -> float:
    """The mean of sigmoid(logit) over the rows, in float64 by numpy (one thread, one order of terms). In float32
    by torch, model.json's ratios differed in their 7th digit between OMP_NUM_THREADS=1 and 2, model.onnx the same
    bytes: its mean over RATIO_ROWS rows splits the sum between threads, and its sigmoid rounds the rows at a
    thread's chunk edge by another code path than the rest (one float32 step apart). The logits are the same
    at any thread count; so is the float64 mean of their sigmoids."""
    return float(np.mean(sigmoid(logit.numpy().astype(np.float64))))


# a slot whose logged click rate is this far below the top's has a position effect the bypass should show
CLEAR_FALL = 0.9


def inverted_slots(learned: list[float], logged: list[float]) -> list[int]:
    """The slots (1-based) where the bypass learned no fall from slot 1 (a ratio of 1 or more) though the log's
    own click rate there falls clearly below slot 1's. The logged ratios mix the position with the ads the policy
    put there, so the two need not agree in size; but a debiased ratio at or above 1 where the log falls says the
    position effect was not learned (a lower slot examined as much as the top, or more)."""
    pairs = enumerate(zip(learned, logged, strict=True))
    return [k + 1 for k, (mine, log) in pairs if log < CLEAR_FALL and mine >= 1.0]


def warn_of_ratios_against_the_log(
    learned: list[float], logged: list[float], name: str = "NAME", start: str = "drawn"
) -> None:
    """One warning line naming both lists when ``inverted_slots`` finds any: on a 40k-row log whose click rate
    fell from 0.122 at slot 1 to 0.026 at slot 5, `ctr new`'s settings (200 steps) learned [1, 1.04, 1.13, 1.20,
    1.32] for two seeds of four, silently: the served "slot-1" pCTR was the average slot's.

    Its next step is the measured one for the bypass's ``start`` (the config's ``bypass_start``): from the drawn
    start, training longer is no fix (``adversarial_ctr``'s SGD leaves the draw where it is; ``esmm_debiased``'s
    inverted seed was still flat after 4 x the steps) while the log start served a fall for every seed of 8
    (docs/moore2018.md, "A small own log"); a bypass that started at the log and ended inverted was moved there by
    its training, which only the held-out calibration can judge."""
    inverted = inverted_slots(learned, logged)
    if not inverted:
        return
    if start == "drawn":
        next_step = (
            'set [model] bypass_start = "log" (the bypass then starts at the log\'s own fall: on a 40k-row log it '
            "served a fall for every seed of 8 where training longer left a drawn start inverted; its calibration "
            'moved either way by model kind: docs/moore2018.md, "A small own log")'
        )
    else:
        next_step = f"it started from bypass_start = {start!r} and its training moved it there"
    logger.warning(
        "the position bypass learned slot ratios %s where the log's own click rates fall as %s: at slot(s) %s "
        "it learned no fall from slot 1, so the position effect is not learned and the served slot-1 pCTR is "
        "not the top slot's; %s. Check `ctr evaluate %s --logs HELDOUT`'s calibration per position",
        [round(r, 3) for r in learned],
        [round(r, 3) for r in logged],
        inverted,
        next_step,
        name,
    )
