"""The served CTR model's own settings (models/ctr/config.toml [model] and [training]) must learn on a
small world: one epoch over feedback-loop logs gives a pCTR that ranks the held-out uniformly displayed
day at least as well as the naive model and is better calibrated against the true position-1 CTR.

Regression: with the offset c started at 0 and these settings, the tanh network saturated and served a
near-constant (validation AUC 0.44, held-out AUC 0.51), and its initial weights were not seeded.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from common.encoder import FeatureEncoder
from tests.support.checkout import ROOT
from training.evaluation.metrics import auc, expected_calibration_error
from training.evaluation.world_heldout import heldout_day
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, predict
from training.logs.column_arrays import column_array
from training.model_config import DataConfig, ModelConfig
from training.models.registry import build_model
from training.pipeline import train, training_data

SERVED = ModelConfig.load(ROOT / "models", "ctr")
TINY_WORLD = {"seed": 0, "n_users": 2000, "n_ads": 500}
TINY_DATA = DataConfig(days=2, requests_per_day=8000, heldout_requests=8000)
# as many optimiser steps per epoch as the served data gives (3 days x 20,000 requests at 2,048 rows a step)
TINY_BATCH = round(SERVED.training.batch_size * TINY_DATA.days * TINY_DATA.requests_per_day / (3 * 20_000))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    training = replace(SERVED.training, batch_size=TINY_BATCH)
    config = replace(SERVED, world=TINY_WORLD, data=TINY_DATA, training=training)
    _, spec, data = training_data(config, None, None, tmp_path_factory.mktemp("logs"))
    table = heldout_day(config)
    true_ctr = column_array(table, "true_ctr")  # position-free: the click probability at position 1
    clicks = np.random.default_rng(0).random(true_ctr.size) < true_ctr
    return config, spec, data, ImpressionTensors.from_table(table, FeatureEncoder(spec)), true_ctr, clicks


def test_served_settings_learn_and_debias(world):
    config, spec, data, heldout, true_ctr, clicks = world
    scores = {}
    for method, overrides in {"served": {}, "naive": {"lam": 0.0, "bypass": False}}.items():
        model = build_model(config.kind, spec, {**config.model, **overrides}, seed=config.training.seed)
        validation = fit(model, data, config.training, progress=False)
        pctr = predict(model, heldout)["pctr"]
        scores[method] = {
            "validation_auc": validation["ctr_auc"],
            "rus_auc": auc(clicks, pctr),
            "calibration_error": expected_calibration_error(pctr, true_ctr),
        }
    served, naive = scores["served"], scores["naive"]
    assert served["validation_auc"] > 0.6, scores  # was 0.44 on the full world
    assert served["rus_auc"] > 0.58, scores
    assert served["rus_auc"] >= naive["rus_auc"] - 0.01, scores
    assert served["calibration_error"] < 0.6 * naive["calibration_error"], scores


def test_training_is_reproducible(world, tmp_path):
    """`ctr train` twice gives the same weights: the initialisation is seeded, not left to torch's state."""
    config = world[0]
    root = tmp_path / "models"
    (root / "ctr").mkdir(parents=True)
    text = (ROOT / "models" / "ctr" / "config.toml").read_text()
    (root / "ctr" / "config.toml").write_text(
        text.replace("requests_per_day = 20000", "requests_per_day = 1000").replace("days = 3", "days = 1")
    )
    assert ModelConfig.load(root, "ctr").data.requests_per_day == 1000 != config.data.requests_per_day
    first = train("ctr", root, work_dir=tmp_path / "a", progress=False)
    torch.manual_seed(12345)  # whatever state the global generator is left in
    second = train("ctr", root, work_dir=tmp_path / "b", progress=False)
    assert first.state_dict.keys() == second.state_dict.keys()
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key
