"""Each probability output's mean over the validation rows, kept in model.json's ``metrics`` as the baseline
that the served mean (``ctr_inference_output_sum_total`` over ``ctr_inference_count_total``) is compared to.

The logged CTR is no such baseline: the model serves debiased slot-1 pCTR, whose mean on normal traffic is
~70 % above the click rate of the logs (0.073 against 0.043), so only the model's own mean on held-out rows
says what a healthy served mean is. Training writes the means, the service reads them back: one naming here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# graph outputs that are probabilities (the scoring contract's, DESIGN.md): the ones whose mean is meaningful
PROBABILITY_OUTPUTS = ("pctr", "pcvr", "pctcvr")


def mean_key(output: str) -> str:
    """The ``metrics`` key of ``output``'s mean, ``<output>_mean`` as ``ctr_auc`` is ``<target>_<metric>``."""
    return f"{output}_mean"


def output_means(predictions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The mean, in float64, of each probability output present in ``predictions`` (float32 arrays): float32
    accumulation over a million rows drifts in the 4th digit, past what the served mean resolves."""
    return {
        mean_key(name): float(np.mean(predictions[name], dtype=np.float64))
        for name in PROBABILITY_OUTPUTS
        if name in predictions and predictions[name].size
    }


def training_means(metrics: Mapping[str, float]) -> dict[str, float]:
    """Output -> its mean at training time from a manifest's ``metrics``; empty for a model.json exported before
    the means were recorded."""
    return {name: metrics[mean_key(name)] for name in PROBABILITY_OUTPUTS if mean_key(name) in metrics}
