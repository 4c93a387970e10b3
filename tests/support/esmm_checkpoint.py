"""The checkpoint of a small ESMM (kind esmm, hidden [32, 16]) on the spec of tests/support/model_batches.py, as
`ctr train` saves one, for the tests of what is done with a checkpoint: export, refusal, evaluation."""

from __future__ import annotations

import torch

from tests.support.model_batches import SPEC
from training.fitting.checkpoint import Checkpoint
from training.models.esmm import ESMM
from training.models.settings.esmm import ESMMConfig


def checkpoint(name: str = "esmm") -> Checkpoint:
    torch.manual_seed(0)
    model = ESMM(SPEC, ESMMConfig(hidden=[32, 16]))
    return Checkpoint(
        name=name,
        kind="esmm",
        model_params={"hidden": [32, 16]},
        spec=SPEC,
        state_dict=model.state_dict(),
        metrics={"ctr_auc": 0.7},
        data_fingerprint="abc",
        constants={"b": 0.25},
    )
