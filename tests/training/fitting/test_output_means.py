"""model.json's ``metrics`` keep each probability output's mean over the validation rows (``pctr_mean``, ...),
in float64: the baseline of the served mean, which the logged CTR is not (the model serves debiased slot-1
pCTR, ~70 % above the logs' click rate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.output_means import training_means
from tests.support.model_batches import SPEC, batch
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import evaluate, predict
from training.models.esmm import ESMM
from training.models.settings.esmm import ESMMConfig


def test_validation_metrics_hold_each_probability_s_float64_mean() -> None:
    torch.manual_seed(0)
    model = ESMM(SPEC, ESMMConfig(hidden=[8]))
    validation = ImpressionTensors(batch(rows=300, seed=1))
    metrics = evaluate(model, validation)
    predicted = predict(model, validation, batch_size=64)
    assert set(training_means(metrics)) == {"pctr", "pcvr", "pctcvr"}
    for output, mean in training_means(metrics).items():
        assert metrics[f"{output}_mean"] == mean
        assert mean == pytest.approx(float(predicted[output].astype(np.float64).mean()), rel=1e-12, abs=0)
    assert "ctr_auc" in metrics  # beside the existing metrics
