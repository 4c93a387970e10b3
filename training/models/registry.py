"""Each model kind's network by name: the torch module that ``kind`` in ``models/<name>/config.toml`` builds.

What the kinds are, with their settings, is training/models/kinds.py, which imports no torch; a network here is
built from the settings it checks (``model_config_of``), and tests/training/models/test_kinds.py checks that the
two name the same kinds."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from common.features import FeatureSpec
from training.models.adversarial_ctr import AdversarialCTR
from training.models.aman import AMAN
from training.models.base_cvr import BaseCVR
from training.models.division import Division
from training.models.esam import ESAM
from training.models.escm2 import ESCM2
from training.models.esmm import ESMM
from training.models.esmm_debiased import DebiasedESMM
from training.models.ips_cvr import IPSCVR
from training.models.kinds import model_config_of
from training.models.oversampling import Oversampling

NETWORKS: dict[str, type[nn.Module]] = {
    "esmm": ESMM,
    "esmm_debiased": DebiasedESMM,
    "adversarial_ctr": AdversarialCTR,
    "esam": ESAM,
    "cvr_base": BaseCVR,
    "cvr_oversampling": Oversampling,
    "cvr_aman": AMAN,
    "division": Division,
    "ips_cvr": IPSCVR,
    "escm2": ESCM2,
}


def build_model(kind: str, spec: FeatureSpec, params: dict[str, Any], seed: int | None = None) -> nn.Module:
    """A fresh model of ``kind`` over ``spec``, configured by ``params`` (the config's [model] table).

    With ``seed`` its initial weights are drawn from ``torch.manual_seed(seed)``, so that two builds of
    one config train to the same model; without it, from whatever state torch's global generator is in.
    """
    model_config = model_config_of(kind, params)
    if seed is not None:
        torch.manual_seed(seed)
    model = NETWORKS[kind](spec, model_config)
    refuse_past_onnx_limit(kind, spec, model)
    return model


ONNX_FILE_LIMIT = 2**31  # protobuf's limit on one message: an ONNX file that holds its own weights
GRAPH_ROOM = 2**26  # beside the weights: the graph's nodes and names, with room to spare


def refuse_past_onnx_limit(kind: str, spec: FeatureSpec, model: nn.Module) -> None:
    """ValueError when ``model`` (a ``kind`` model of ``spec``) holds more weights than an ONNX file can, before
    any step: past 2 GiB the export failed after the whole training ("Unable to parse proto ... exceeds the
    size limit", at 5 features of 1,048,573 buckets x 103 dimensions), and torch's exporter, moving the
    weights to files of their own, wrote a version whose weights nothing checksummed. (Counted on torch's
    meta device instead, nothing would be allocated, but its first use cost each process a second.)"""
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if weights + GRAPH_ROOM > ONNX_FILE_LIMIT:
        raise ValueError(
            f"a {kind} model of this spec and [model] holds {weights / 2**30:.2f} GiB of weights, past the "
            f"{ONNX_FILE_LIMIT / 2**30:g} GiB an ONNX file can hold: the categorical features' "
            f"{spec.total_buckets:,} buckets in all, times the embedding width, make most of it; lower their "
            "buckets or the embedding dimension"
        )
