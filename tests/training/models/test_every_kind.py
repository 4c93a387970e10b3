"""What every registered model kind must do, checked from the config `ctr new --kind KIND` writes.

A kind is a row of training/models/kinds.py and of training/models/registry.py (docs/models.md): its [model]
defaults must load as a config (the checks of common/config_table.py refuse a field type they cannot check), its
module must answer its ``output_names`` as one probability per row, its metrics (model.json's) must be numbers,
its loss must be finite and reach each output's own weights, and its inference graph must export with parity. Each
kind has its own tests of what it learns; these catch a kind that breaks the contract the trainer,
the exporter and the service rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.repository import read_manifest
from tests.support.model_batches import SPEC
from training.export import export_checkpoint, random_inputs
from training.fitting.checkpoint import Checkpoint
from training.model_config import ModelConfig
from training.models.kinds import MODEL_KINDS, trains_on
from training.models.registry import build_model
from training.new_model import default_config_toml

IMPRESSION_KINDS = sorted(kind for kind in MODEL_KINDS if trains_on(kind) == "impressions")
ROWS = 64


def scaffolded(root: Path, kind: str) -> ModelConfig:
    (root / "m").mkdir()
    (root / "m" / "config.toml").write_text(default_config_toml(kind))
    return ModelConfig.load(root, "m")


def tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """A minibatch as training/fitting/dataset.py draws it: inputs, labels, the logged position and its CTR b."""
    inputs = random_inputs(SPEC, ROWS, seed)
    rng = np.random.default_rng(seed)
    click = rng.integers(0, 2, ROWS)
    position = rng.integers(1, 6, ROWS)
    return {
        "categorical": torch.from_numpy(inputs["categorical"]),
        "numeric": torch.from_numpy(inputs["numeric"]),
        "click": torch.from_numpy(click),
        "conversion": torch.from_numpy(click * rng.integers(0, 2, ROWS)),
        "position": torch.from_numpy(position),
        "b": torch.from_numpy((0.3 / position).astype(np.float32)),
    }


def gradient_norm(value: torch.Tensor, weight: torch.Tensor) -> float:
    (gradient,) = torch.autograd.grad(value, weight, retain_graph=True, allow_unused=True)
    return 0.0 if gradient is None else float(gradient.abs().sum())


def own_weights(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, set[str]]:
    """Per output, the weights it depends on that not every other output depends on (ESMM's pCVR: its CVR
    tower, not the shared embedding): a loss that reaches them trains that output, not only its siblings."""
    outputs = model(batch["categorical"], batch["numeric"])
    depends = {
        output: {name for name, weight in model.named_parameters() if gradient_norm(value.sum(), weight) > 0}
        for output, value in outputs.items()
    }
    own = {}
    for output, weights in depends.items():
        others = [depends[o] for o in depends if o != output]
        own[output] = weights - set.intersection(*others) if others else weights
    return own


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_the_scaffold_of_every_kind_loads_and_builds(tmp_path: Path, kind: str) -> None:
    config = scaffolded(tmp_path, kind)
    assert config.kind == kind
    model = build_model(kind, SPEC, config.model, seed=0)
    assert model.output_names and len(set(model.output_names)) == len(model.output_names)


@pytest.mark.parametrize("kind", IMPRESSION_KINDS)
def test_every_impression_kind_answers_probabilities_learns_and_exports_with_parity(tmp_path: Path, kind: str) -> None:
    config = scaffolded(tmp_path, kind)
    model = build_model(kind, SPEC, config.model, seed=0)
    batch = tensors()
    if hasattr(model, "fix_constants"):
        model.fix_constants(batch)
    model.eval()
    with torch.no_grad():
        outputs = model(batch["categorical"], batch["numeric"])
    assert set(outputs) == set(model.output_names)
    for name, value in outputs.items():
        assert value.shape == (ROWS,), name
        assert bool(((value >= 0) & (value <= 1)).all()), name
    labels = {name: batch[name].numpy() for name in ("click", "conversion")}
    metrics = model.metrics({name: value.numpy() for name, value in outputs.items()}, labels)
    assert metrics and all(np.isfinite(float(value)) for value in metrics.values())  # model.json's metrics
    model.train()
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    trained = {name for name, weight in model.named_parameters() if gradient_norm(loss, weight) > 0}
    for name, own in own_weights(model, batch).items():  # each output is trained through weights of its own
        assert own & trained, f"{name}: the loss reaches none of its own weights {sorted(own)[:4]}"
    checkpoint = Checkpoint(
        name="m",
        kind=kind,
        model_params=config.model,
        spec=SPEC,
        state_dict=model.state_dict(),
        constants=dict(getattr(model, "constants", {})),
    )
    assert export_checkpoint(checkpoint, tmp_path) == 1  # parity checked against torch before publishing
    assert [o.name for o in read_manifest(tmp_path, "m", 1).outputs] == list(model.output_names)
