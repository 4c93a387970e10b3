"""The served CTR model's export: parity with torch, features-only inputs, b recorded in model.json."""

import numpy as np
import onnx
import onnxruntime as ort
import torch

from common.repository import MODEL_FILE, read_manifest, version_dir
from tests.support.model_batches import SPEC, world_batch
from tests.support.optimized_graph import PER_ROW_BYPASS_OPS, optimized_op_types
from training.export import PARITY_TOLERANCE, export_checkpoint, random_inputs
from training.fitting.checkpoint import Checkpoint
from training.models.adversarial_ctr import AdversarialCTR
from training.models.settings.adversarial_ctr import AdversarialCTRConfig

PARAMS = {"base_hidden": [16, 8], "prediction_hidden": [8], "bias_hidden": [8], "optimizer": "adam"}


def checkpoint(bypass: bool) -> Checkpoint:
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass=bypass, **PARAMS))
    model.fix_constants(world_batch())
    params = {**PARAMS, "bypass": bypass}
    return Checkpoint("ctr", "adversarial_ctr", params, SPEC, model.state_dict(), constants=model.constants)


def test_export_has_feature_inputs_only_and_matches_torch(tmp_path):
    for bypass in (True, False):
        ckpt = checkpoint(bypass)
        name = f"ctr_{bypass}"
        ckpt.name = name
        export_checkpoint(ckpt, tmp_path)
        path = version_dir(tmp_path, name, 1) / MODEL_FILE
        graph = onnx.load(str(path)).graph
        assert [i.name for i in graph.input] == ["categorical", "numeric"]  # no b, no position
        assert [o.name for o in graph.output] == ["pctr"]
        assert not PER_ROW_BYPASS_OPS & optimized_op_types(path, tmp_path)  # b fixed: one term, folded
        manifest = read_manifest(tmp_path, name, 1)
        assert manifest.constants == ckpt.constants and 0.0 < manifest.constants["b"] < 1.0
        assert manifest.metrics["export_parity_max_abs_diff"] <= PARITY_TOLERANCE
        model = ckpt.build()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for rows, seed in [(1, 21), (9, 22), (700, 23)]:
            inputs = random_inputs(SPEC, rows, seed)
            (onnx_pctr,) = session.run(["pctr"], inputs)
            with torch.no_grad():
                categorical, numeric = torch.from_numpy(inputs["categorical"]), torch.from_numpy(inputs["numeric"])
                expected = model.predict_at(categorical, numeric, torch.full((rows,), manifest.constants["b"]))
            assert onnx_pctr.shape == (rows,)
            assert np.max(np.abs(onnx_pctr - expected.numpy())) <= PARITY_TOLERANCE
