"""model.json's constant predictor: the training rows' rates (the click rate, and the click-and-conversion rate over
every training row), its log loss measured on the held-out rows; the same figures from the streamed trainer's counts
(``SplitLabels``) as from the in-memory trainer's tensors (``fit``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from tests.support.debiased_esmm import SMALL
from tests.support.model_batches import SPEC, batch
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit
from training.fitting.settings import TrainingConfig
from training.fitting.split_labels import SplitLabels
from training.models.esmm import ESMM
from training.models.settings.esmm import ESMMConfig

# 8 rows, the first 6 trained on: 3 clicks of which 1 converted; the held-out 2: both clicked, one converted
CLICK = np.array([1, 0, 1, 0, 1, 0, 1, 1])
CONVERSION = np.array([1, 0, 0, 0, 0, 0, 1, 0])


def bernoulli_log_loss(labels: list[int], rate: float) -> float:
    return -sum(math.log(rate) if y else math.log(1 - rate) for y in labels) / len(labels)


def test_the_counts_give_the_training_rates_and_their_log_loss_on_the_held_out_rows():
    split = SplitLabels.of(CLICK, CONVERSION, validation_fraction=0.25)
    assert split.constant_rates() == {"ctr": 3 / 6, "ctcvr": 1 / 6}  # ctcvr over rows, not over clicks
    reference = split.constant_reference(ctcvr=True)
    assert reference["training_ctr"] == 0.5 and reference["training_ctcvr"] == 1 / 6
    assert math.isclose(reference["ctr_logloss_constant"], bernoulli_log_loss([1, 1], 0.5))
    assert math.isclose(reference["ctcvr_logloss_constant"], bernoulli_log_loss([1, 0], 1 / 6))


def test_the_in_memory_trainer_measures_the_training_rates_on_the_held_out_rows():
    torch.manual_seed(0)
    data = batch(rows=8)
    data["click"], data["conversion"] = torch.from_numpy(CLICK), torch.from_numpy(CONVERSION)
    data["position"] = torch.ones(8, dtype=torch.int64)
    config = TrainingConfig(epochs=1, batch_size=8, validation_fraction=0.25)
    metrics = fit(ESMM(SPEC, ESMMConfig(**SMALL)), ImpressionTensors(data), config, progress=False)
    assert metrics["training_ctr"] == 0.5 and math.isclose(metrics["training_ctcvr"], 1 / 6)
    assert math.isclose(metrics["ctr_logloss_constant"], bernoulli_log_loss([1, 1], 0.5))
    assert math.isclose(metrics["ctcvr_logloss_constant"], bernoulli_log_loss([1, 0], 1 / 6))
