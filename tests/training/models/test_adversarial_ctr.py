import numpy as np
import pytest
import torch

from common.features import Feature, FeatureSpec
from tests.support.model_batches import SPEC, world_batch
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit
from training.fitting.settings import TrainingConfig
from training.models.adversarial_ctr import (
    ACTIVATION_LAYERS,
    ADVERSARY_PENALTIES,
    AdversarialCTR,
    squared_correlation,
    squared_covariance,
)
from training.models.settings.adversarial_ctr import ACTIVATIONS, ADVERSARY_LOSSES, AdversarialCTRConfig
from training.position_ctr import position_ctr_per_row


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lam": 1.0}, "lam"),
        ({"lam": -0.1}, "lam"),
        ({"base_hidden": []}, "base_hidden"),
        ({"bias_hidden": [0]}, "bias_hidden"),
        ({"activation": "gelu"}, "activation"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"bias_epochs": -1}, "bias_epochs"),
    ],
)
def test_config_rejects_bad_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        AdversarialCTRConfig(**overrides)


def test_each_choice_the_settings_take_is_one_the_network_has():
    """The settings (torch-free) name the activations and penalties; the network maps each name to its torch part.
    A name in the settings alone would pass the config's check and fail as the network is built."""
    assert set(ACTIVATION_LAYERS) == set(ACTIVATIONS)
    assert set(ADVERSARY_PENALTIES) == set(ADVERSARY_LOSSES)


def test_paper_defaults():
    config = AdversarialCTRConfig()
    assert (config.base_hidden, config.prediction_hidden, config.bias_hidden) == ([10], [10], [10])
    assert (config.bypass_units, config.activation, config.optimizer, config.bias_epochs) == (1, "tanh", "sgd", 100)


def test_squared_covariance_is_the_sample_covariance_squared():
    rng = np.random.default_rng(0)
    b, b_hat = rng.random(50), rng.random(50)
    expected = np.cov(b, b_hat)[0, 1] ** 2
    assert squared_covariance(torch.tensor(b), torch.tensor(b_hat)).item() == pytest.approx(expected, rel=1e-9)


def test_named_parts_and_no_bypass_variant():
    with_bypass = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass=True))
    without = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass=False))
    assert {"base", "prediction", "bias", "bypass"} <= {n for n, _ in with_bypass.named_children()}
    assert without.bypass is None and not any(n.startswith("bypass") for n, _ in without.named_parameters())


def test_inference_uses_the_fixed_b_and_ignores_the_bias_network():
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig()).eval()
    data = world_batch()
    model.fix_constants(data)
    first = float(data["b"][data["position"] == 1][0])
    assert model.constants == {"b": pytest.approx(first)}
    with torch.no_grad():
        served = model(data["categorical"], data["numeric"])["pctr"]
        at_b1 = model.predict_at(data["categorical"], data["numeric"], torch.full((64,), first))
        at_b3 = model.predict_at(data["categorical"], data["numeric"], torch.full((64,), first + 0.5))
        torch.nn.init.normal_(model.bias.out.weight)  # the adversary plays no part in serving
        again = model(data["categorical"], data["numeric"])["pctr"]
    torch.testing.assert_close(served, at_b1)
    torch.testing.assert_close(served, again)
    assert not torch.allclose(served, at_b3)


def test_loss_b_moves_only_the_bias_network_and_loss_n_never_moves_it():
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig(lam=0.5))
    bias_ids = {id(p) for p in model.bias.parameters()}
    assert bias_ids.isdisjoint(id(p) for p in model.predictor_parameters())
    assert len(bias_ids) + len(model.predictor_parameters()) == len(list(model.parameters()))
    adversarial, bias_only = model.training_phases(TrainingConfig(learning_rate=0.1))
    data = world_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    bias_only.step(data)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("bias.") for n in changed)
    # one alternating step = a Loss_B step, then a Loss_N step that leaves the Bias network where Loss_B put it
    twin = AdversarialCTR(SPEC, AdversarialCTRConfig(lam=0.5))
    twin.load_state_dict(model.state_dict())
    twin_bias_only = twin.training_phases(TrainingConfig(learning_rate=0.1))[1]
    adversarial.step(data)
    twin_bias_only.step(data)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q) == name.startswith("bias."), name


def test_the_adversary_removes_position_from_z_a():
    """A feature that reveals the position: lambda = 0 lets Z_A carry it, a large lambda does not."""
    rng = np.random.default_rng(0)
    n = 1000
    position = rng.integers(1, 3, n)
    click = rng.random(n) < np.where(position == 1, 0.4, 0.1)
    numeric = np.stack([position + 0.1 * rng.standard_normal(n), rng.standard_normal(n)], axis=1)
    b = position_ctr_per_row(position, click)
    tensors = {
        "categorical": torch.zeros((n, 0), dtype=torch.int64),
        "numeric": torch.from_numpy(numeric.astype(np.float32)),
        "click": torch.from_numpy(click.astype(np.int64)),
        "conversion": torch.zeros(n, dtype=torch.int64),
        "position": torch.from_numpy(position),
        "b": torch.from_numpy(b),
    }
    spec = FeatureSpec((Feature("reveals_position", "numeric", "candidate"), Feature("noise", "numeric", "candidate")))
    naive_mse = float(np.mean((b - b.mean()) ** 2))
    mse = {}
    for lam in (0.0, 0.99999):
        torch.manual_seed(0)
        model = AdversarialCTR(spec, AdversarialCTRConfig(lam=lam, optimizer="adam", bias_epochs=3))
        fit(
            model,
            ImpressionTensors(tensors),
            TrainingConfig(epochs=3, batch_size=100, learning_rate=0.02, validation_fraction=0.0),
            progress=False,
        )
        mse[lam] = model.bias_mse(tensors["categorical"], tensors["numeric"], tensors["b"])
    assert mse[0.0] < 0.1 * naive_mse  # position is plain to see in the plain network's Z_A
    assert mse[0.99999] > 0.5 * naive_mse  # and mostly hidden from the adversary's


def test_squared_correlation_is_scale_free_and_the_default_penalty_is_the_covariance():
    rng = np.random.default_rng(0)
    b, b_hat = rng.random(50), rng.random(50)
    expected = np.corrcoef(b, b_hat)[0, 1] ** 2
    assert squared_correlation(torch.tensor(b), torch.tensor(b_hat)).item() == pytest.approx(expected, rel=1e-9)
    assert squared_correlation(torch.tensor(b * 1e-3), torch.tensor(b_hat)).item() == pytest.approx(expected, rel=1e-6)
    assert squared_correlation(torch.zeros(50, dtype=torch.float64), torch.tensor(b_hat)).item() == 0.0
    assert AdversarialCTRConfig().adversary_loss == "covariance"
    with pytest.raises(ValueError, match="adversary_loss"):
        AdversarialCTRConfig(adversary_loss="variance")


def test_loss_b_is_the_mean_squared_error_of_b_hat_per_row():
    """Loss_B is mean (b - b_hat)^2, not the paper's sum: the sum multiplies SGD's step at lr 0.01 by the minibatch
    size (100 rows by default) and diverges."""
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig())
    data = world_batch()
    with torch.no_grad():
        b_hat = model.bias(model.base(data["categorical"], data["numeric"]))
    expected = sum((float(b) - float(h)) ** 2 for b, h in zip(data["b"], b_hat, strict=True)) / len(b_hat)
    assert model.bias_loss(data).item() == pytest.approx(expected, rel=1e-5)
