"""The constant predictor: one click rate for every row, the reference a model's CTR log loss needs.

A log loss alone says nothing: 0.62 is good on a log clicked half the time and bad on one clicked a quarter of
the time. An audit trained `ctr new`'s defaults on a Criteo-like log of 100k rows: its second epoch overfitted
to a validation log loss of 0.623 where predicting the training rows' click rate for every row gave 0.548, and
the model exported and served with nothing said. Training records this reference beside the model's log loss
in model.json (``ctr_logloss_constant``, the training rows' rate ``training_ctr``), and ``ctr evaluate`` beside
its own (the evaluated rows' rate: the best constant for them); both warn when the model is not below it.
"""

from __future__ import annotations

import logging

import numpy as np

from training.evaluation.metrics import log_loss

logger = logging.getLogger(__name__)

CONSTANT_SUFFIX = "_constant"  # ctr_logloss_constant beside ctr_logloss, as the report's other keys read
WORSE_THAN_CONSTANT = (
    "%s predicts worse than a constant: its %s %.4f is not below %.4f, the log loss of predicting %s %.4f for "
    "every %s; train it with fewer epochs, fewer buckets, or more rows"
)


def constant_key(logloss_key: str) -> str:
    """The key of the constant predictor's log loss beside ``logloss_key`` (``ctr_logloss_constant``)."""
    return f"{logloss_key}{CONSTANT_SUFFIX}"


def constant_log_loss(labels: np.ndarray, rate: float | None = None) -> float:
    """The log loss of predicting ``rate`` for every row of ``labels`` (the labels' own mean by default: the
    best a constant can do on them). ``labels`` may be probabilities, for an expected log loss."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if labels.size == 0:
        return float("nan")
    return log_loss(labels, np.full(labels.size, labels.mean() if rate is None else rate))


def training_constant(
    train_clicks: np.ndarray,
    validation_clicks: np.ndarray,
    ctcvr: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """model.json's reference: the training rows' click rate (``training_ctr``, what a model that learnt nothing
    but the base rate predicts) and its log loss on the validation rows (``ctr_logloss_constant``); with
    ``ctcvr`` (the training and validation rows' click-and-conversion labels, for a model that records a
    ``ctcvr_logloss``), the same of the click-and-conversion rate (``training_ctcvr``,
    ``ctcvr_logloss_constant``): conversions are rarer than clicks, and a CTCVR tower can overfit them alone."""
    reference: dict[str, float] = {}
    labels = {"ctr": (train_clicks, validation_clicks)} | ({"ctcvr": ctcvr} if ctcvr is not None else {})
    for label, (train, validation) in labels.items():
        rate = float(np.mean(np.asarray(train, dtype=np.float64))) if len(train) else float("nan")
        reference |= {f"training_{label}": rate, constant_key(f"{label}_logloss"): constant_log_loss(validation, rate)}
    return reference


def warn_if_worse_than_constant(
    what: str, key: str, model_logloss: float | None, constant: float | None, rate: tuple[str, float], rows: str
) -> bool:
    """One warning when ``model_logloss`` (the metric ``key`` of ``what``) is not below the constant predictor's
    (``rate``: whose click rate, and its value; ``rows``: what one row scored is); True when it warned."""
    if model_logloss is None or constant is None or not (np.isfinite(model_logloss) and np.isfinite(constant)):
        return False
    if not 0.0 < rate[1] < 1.0:  # labels of one class (a log without conversions): the constant is exact, ~0
        # log loss, and no model is below it; a Criteo-like log of clicks alone warned "ctcvr_logloss 0.0000 is
        # not below 0.0000" of a model with nothing to learn there
        return False
    if model_logloss < constant:
        return False
    logger.warning(WORSE_THAN_CONSTANT, what, key, model_logloss, constant, *rate, rows)
    return True
