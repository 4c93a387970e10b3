"""What a checkpoint's exported model serves, for tests that compare two checkpoints by their scores."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from common.repository import MODEL_FILE, version_dir
from training.export import export_checkpoint, random_inputs
from training.fitting.checkpoint import Checkpoint


def onnx_scores(checkpoint: Checkpoint, root) -> list[np.ndarray]:
    export_checkpoint(checkpoint, root)
    session = ort.InferenceSession(str(version_dir(root, "m", 1) / MODEL_FILE), providers=["CPUExecutionProvider"])
    return session.run(None, random_inputs(checkpoint.spec, 500, seed=7))  # every output the model serves
