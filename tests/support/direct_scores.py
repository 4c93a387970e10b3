"""A good /v1/score body of the tiny ESMM's features (``GOOD``) and what ONNX Runtime computes for it without
the service in between (``direct_scores``): the scores the service must answer it with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.encoder import FeatureEncoder
from common.repository import MODEL_FILE, version_dir
from tests.support.tiny_model import SPEC

GOOD = {
    "context": {"user_id": "u_1", "hour": 21},
    "candidates": [
        {"ad_id": "ad_7", "ad_price": 12.5},
        {"ad_id": 3, "ad_price": 3, "ad_quality": 0.9},
        {"ad_id": "ad_7", "ad_price": 0.0, "ad_quality": None},
    ],
}


def direct_scores(repository: Path, name: str = "esmm", version: int = 1) -> dict[str, np.ndarray]:
    """What ONNX Runtime computes for GOOD without the service in between."""
    columns = {
        **GOOD["context"],
        "ad_id": ["ad_7", 3, "ad_7"],
        "ad_price": [12.5, 3, 0.0],
        "ad_quality": [None, 0.9, None],
    }
    inputs = FeatureEncoder(SPEC).encode(columns, 3).as_inputs()
    session = ort.InferenceSession(str(version_dir(repository, name, version) / MODEL_FILE))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))
