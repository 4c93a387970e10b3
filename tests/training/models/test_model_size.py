"""A model past what one ONNX file holds is refused when it is built, before any training step: its export
failed after the whole training with protobuf's "Unable to parse proto ... exceeds the size limit"."""

from __future__ import annotations

import pytest
import torch

from common.features import Feature, FeatureSpec, NumericStats
from training.models import registry
from training.models.registry import build_model


def spec_of(features: int, buckets: int) -> FeatureSpec:
    categorical = tuple(Feature(f"f{i}", "categorical", "candidate", buckets=buckets) for i in range(features))
    return FeatureSpec((*categorical, Feature("price", "numeric", "candidate")), {"price": NumericStats(0.0, 1.0)})


def test_the_limit_is_protobuf_s() -> None:
    assert registry.ONNX_FILE_LIMIT == 2**31


def test_a_model_past_the_limit_is_refused_naming_it_and_its_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the real limit this is 5 x 1,048,573 buckets x 103 dimensions (2.01 GiB, 2 GB to allocate): the
    limit lowered to a quarter GiB, a model of 0.29 GiB stands for it."""
    monkeypatch.setattr(registry, "ONNX_FILE_LIMIT", 2**28)
    with pytest.raises(ValueError) as refused:
        build_model("esmm_debiased", spec_of(5, 1_048_573), {"embedding_dim": 15})
    message = str(refused.value)
    assert "holds 0.29 GiB of weights, past the 0.25 GiB an ONNX file can hold" in message
    assert "5,242,865 buckets in all" in message
    assert build_model("esmm_debiased", spec_of(5, 1_048_573), {"embedding_dim": 8}) is not None  # 0.16 GiB


def test_the_default_width_holds_27_features_of_spec_infer_s_largest_bucket_count() -> None:
    """docs/scale.md's figure, at the real limit: built on torch's meta device, nothing allocated."""
    with torch.device("meta"):
        assert build_model("esmm_debiased", spec_of(27, 1_048_573), {}) is not None  # 1.90 GiB
        with pytest.raises(ValueError, match=r"holds 1\.97 GiB of weights"):
            build_model("esmm_debiased", spec_of(28, 1_048_573), {})
