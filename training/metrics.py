"""Ranking and calibration metrics, numpy only (used by models, evaluation and experiments)."""

from __future__ import annotations

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN when one class is absent."""
    labels = np.asarray(labels).astype(bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average rank within each run of tied scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    average = (starts + ends + 1) / 2.0  # 1-based mean rank of each run
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.clip(np.asarray(probabilities, dtype=np.float64).reshape(-1), eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def expected_calibration_error(predicted: np.ndarray, true_probability: np.ndarray, bins: int = 20) -> float:
    """Mean |predicted - true| per equal-count bin of the prediction, weighted by bin size.

    The reference is the true probability (known in the simulator), not a 0/1 label, so the error
    measures calibration without label noise.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    true_probability = np.asarray(true_probability, dtype=np.float64).reshape(-1)
    if predicted.size == 0:
        return float("nan")
    error = 0.0
    for chunk in equal_count_bins(predicted, min(bins, predicted.size)):
        error += abs(predicted[chunk].mean() - true_probability[chunk].mean()) * chunk.size
    return float(error / predicted.size)


def equal_count_bins(predicted: np.ndarray, bins: int) -> list[np.ndarray]:
    """The indices of ``predicted`` in ``bins`` bins of consecutive values, sorted stably (ties keep their
    order) and split as evenly as counts allow (``np.array_split``: the first ``size % bins`` bins hold one
    more); with fewer values than bins, the last bins are empty."""
    return np.array_split(np.argsort(predicted, kind="mergesort"), bins)


def binned_means(predicted: np.ndarray, reference: np.ndarray, bins: int) -> tuple[list[float], list[float]]:
    """(mean ``predicted``, mean ``reference``) in each of ``equal_count_bins(predicted, bins)``, in the
    arrays' own precision (NaN for an empty bin): the points of a reliability diagram."""
    chunks = equal_count_bins(predicted, bins)
    return [float(predicted[c].mean()) for c in chunks], [float(reference[c].mean()) for c in chunks]
