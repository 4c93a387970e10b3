import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from common.repository import MANIFEST_FILE, MODEL_FILE, read_manifest, sha256_file, version_dir, versions
from tests.support.esmm_checkpoint import checkpoint
from tests.support.model_batches import SPEC
from training.export import (
    PARITY_TOLERANCE,
    ParityError,
    check_parity,
    check_relative_parity,
    export_checkpoint,
    export_onnx,
    random_inputs,
)
from training.fitting.checkpoint import Checkpoint
from training.models.esam import ESAM
from training.models.settings.esam import ESAMConfig


def test_export_publishes_a_checked_version(tmp_path):
    version = export_checkpoint(checkpoint(), tmp_path)
    assert version == 1 and versions(tmp_path, "esmm") == [1]
    directory = version_dir(tmp_path, "esmm", 1)
    manifest = read_manifest(tmp_path, "esmm", 1)
    assert manifest.onnx_sha256 == sha256_file(directory / MODEL_FILE)
    assert [o.name for o in manifest.outputs] == ["pctr", "pcvr", "pctcvr"]
    assert {i.name: i.shape for i in manifest.inputs} == {"categorical": ["batch", 2], "numeric": ["batch", 1]}
    assert manifest.feature_spec == SPEC
    assert manifest.constants == {"b": 0.25}
    assert manifest.metrics["export_parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert json.loads((directory / MANIFEST_FILE).read_text())["data_fingerprint"] == "abc"
    other = checkpoint()
    other.metrics = {"ctr_auc": 0.71}  # another export: a new version
    assert export_checkpoint(other, tmp_path) == 2 and versions(tmp_path, "esmm") == [1, 2]


def test_onnx_matches_torch_on_fresh_random_inputs_at_several_batch_sizes(tmp_path):
    ckpt = checkpoint()
    export_checkpoint(ckpt, tmp_path)
    model = ckpt.build()
    session = ort.InferenceSession(str(version_dir(tmp_path, "esmm", 1) / MODEL_FILE))
    for rows, seed in [(1, 11), (7, 12), (1000, 13)]:
        inputs = random_inputs(SPEC, rows, seed)
        onnx_out = session.run(["pctr", "pcvr", "pctcvr"], inputs)
        with torch.no_grad():
            torch_out = model(torch.from_numpy(inputs["categorical"]), torch.from_numpy(inputs["numeric"]))
        for name, value in zip(["pctr", "pcvr", "pctcvr"], onnx_out, strict=True):
            assert value.shape == (rows,)
            assert np.max(np.abs(value - torch_out[name].numpy())) <= PARITY_TOLERANCE
    assert check_parity(model, SPEC, version_dir(tmp_path, "esmm", 1) / MODEL_FILE) <= PARITY_TOLERANCE


def test_exported_probabilities_keep_float32_s_relative_precision_where_they_are_small(tmp_path):
    """ONNX Runtime's Sigmoid is exact to ~6e-8 absolute: a pCTR near 6e-6 was 2 % off, one near 1e-7
    could read 0. The export writes each Sigmoid as 1 / (1 + exp(-x)) (training/precise_sigmoid.py)."""
    ckpt = checkpoint()
    model = ckpt.build()
    with torch.no_grad():
        model.ctr_tower.start_at(-12.0)  # p ~ 6e-6
        model.cvr_tower.start_at(-16.0)  # p ~ 1e-7
    ckpt.state_dict = model.state_dict()
    export_checkpoint(ckpt, tmp_path)
    path = version_dir(tmp_path, "esmm", 1) / MODEL_FILE
    assert "Sigmoid" not in {node.op_type for node in onnx.load(str(path)).graph.node}
    inputs = random_inputs(SPEC, 500, seed=5)
    pctr, pcvr = ort.InferenceSession(str(path)).run(["pctr", "pcvr"], inputs)
    with torch.no_grad():
        logits = model.logits(torch.from_numpy(inputs["categorical"]), torch.from_numpy(inputs["numeric"]))
    for served, logit in zip((pctr, pcvr), logits, strict=True):
        true = 1.0 / (1.0 + np.exp(-logit.numpy().astype(np.float64)))
        assert true.max() < 1e-4
        assert np.max(np.abs(served - true) / true) < 1e-6


def test_checkpoint_round_trip(tmp_path):
    ckpt = checkpoint()
    ckpt.save(tmp_path / "c.pt")
    loaded = Checkpoint.load(tmp_path / "c.pt")
    assert loaded.spec == ckpt.spec and loaded.constants == ckpt.constants
    for key, value in ckpt.state_dict.items():
        torch.testing.assert_close(loaded.state_dict[key], value)


def test_ctr_export_refuses_a_checkpoint_of_another_model(tmp_path):
    """A checkpoint copied under another name was published as the model it was trained as, while the
    command said it had exported the name asked for."""
    from typer.testing import CliRunner

    from cli.main import app
    from training.training_files import checkpoint_path

    checkpoint("small").save(checkpoint_path(tmp_path / "work", "esmm"))
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text('kind = "esmm"\n[model]\nhidden = [32, 16]\n')
    arguments = ["export", "esmm", "-r", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code != 0 and "is a checkpoint of model 'small', not 'esmm'" in str(result.exception)
    assert versions(tmp_path / "models", "esmm") == []


def test_model_json_records_the_code_and_the_package_versions(tmp_path):
    """Scores 1-10 % apart on two machines, and nothing recorded of either's packages (docs/results.md)."""
    from importlib import metadata

    from common.provenance import CHECKOUT

    export_checkpoint(checkpoint(), tmp_path)
    provenance = read_manifest(tmp_path, "esmm", 1).provenance
    packages = provenance["packages"]
    assert packages["torch"] == metadata.version("torch") and packages["onnxruntime"] == metadata.version("onnxruntime")
    assert {"debiased-ctr", "python", "numpy", "onnx", "pyarrow"} <= set(packages)
    if (CHECKOUT / ".git").exists():  # run from a checkout: its commit
        assert len(provenance["git"]["commit"]) == 40 and isinstance(provenance["git"]["dirty"], bool)


def test_a_model_json_without_provenance_still_reads(tmp_path):
    export_checkpoint(checkpoint(), tmp_path)
    path = version_dir(tmp_path, "esmm", 1) / MANIFEST_FILE
    older = json.loads(path.read_text())
    del older["provenance"]
    path.write_text(json.dumps(older))
    assert read_manifest(tmp_path, "esmm", 1).provenance == {}


def test_the_same_weights_trained_from_another_work_dir_are_not_published_again(tmp_path):
    """The simulated logs' path differs with the work dir: "model.json differs in ['training']", version 2."""
    first, second = checkpoint(), checkpoint()
    first.training = {"logs": "artifacts/esmm/train.parquet", "impressions": 10}
    second.training = {"logs": "/elsewhere/esmm/train.parquet", "impressions": 10}
    assert export_checkpoint(first, tmp_path) == 1
    assert export_checkpoint(second, tmp_path) == 1 and versions(tmp_path, "esmm") == [1]
    other_data = checkpoint()
    other_data.training, other_data.data_fingerprint = dict(second.training), "another log"
    assert export_checkpoint(other_data, tmp_path) == 2


def test_an_export_hides_only_the_legacy_exporter_s_deprecation(tmp_path, monkeypatch):
    """Every warning was hidden around torch.onnx.export, the one torch gives to say the TorchScript-based
    exporter this export uses will be removed (training/export.py) among them, and any other with it."""
    import warnings

    from training.export import export_onnx

    real_export = torch.onnx.export

    def export_with_a_new_warning(*args, **kwargs):
        warnings.warn("a warning the exporter did not give before", UserWarning, stacklevel=1)
        return real_export(*args, **kwargs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(checkpoint().build(), SPEC, tmp_path / "plain.onnx")  # torch 2.13's own: hidden
        monkeypatch.setattr(torch.onnx, "export", export_with_a_new_warning)
        export_onnx(checkpoint().build(), SPEC, tmp_path / "new.onnx")
    assert [str(w.message) for w in caught] == ["a warning the exporter did not give before"]


def test_a_small_probability_a_fraction_of_a_percent_off_fails_the_parity_check(tmp_path):
    """PARITY_TOLERANCE (1e-5 absolute) alone let 1 % of a 1e-3 pCTCVR through: the torch model's CVR logit moved
    by 0.005 after its export moves each pCVR (about 1e-3 here) and pCTCVR (about 5e-4) by 0.5 %, 2-5e-6 absolute."""
    model = checkpoint().build()
    with torch.no_grad():
        model.cvr_tower.mlp[-1].bias.fill_(-7.0)  # pCVR about 1e-3
    path = tmp_path / MODEL_FILE
    export_onnx(model, SPEC, path)
    assert check_parity(model, SPEC, path) <= PARITY_TOLERANCE  # the export as made agrees
    with torch.no_grad():
        model.cvr_tower.mlp[-1].bias.add_(0.005)
    with pytest.raises(ParityError, match=r"ONNX Runtime's pc(tc)?vr differs from torch's by 0\.000[2-5]\d* of the"):
        check_parity(model, SPEC, path)
    assert check_parity(model, SPEC, path, probabilities=False) <= PARITY_TOLERANCE  # within the absolute one


def test_onnx_runtimes_own_sigmoid_passes_the_parity_check_at_every_logit() -> None:
    """ONNX Runtime's Sigmoid differs from torch's by up to 1.4e-7 at logits under -8, many times such a small
    probability (at -18 it gives 0 for 1.5e-8): a check relative to the probability alone refused a faithful
    export of a model scoring a 0.1 % CTR, by testing the kernel's approximation."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Sigmoid", ["logit"], ["probability"])],
        "sigmoid",
        [onnx.helper.make_tensor_value_info("logit", onnx.TensorProto.FLOAT, [None])],
        [onnx.helper.make_tensor_value_info("probability", onnx.TensorProto.FLOAT, [None])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = np.linspace(-25, 25, 200_001, dtype=np.float32)
    exported = session.run(None, {"logit": logits})[0]
    check_relative_parity("pctr", exported, torch.sigmoid(torch.from_numpy(logits)).numpy())


def test_an_embedding_graph_that_differs_from_torch_fails_the_absolute_parity_check(tmp_path):
    """A graph whose outputs are no probabilities (a two-tower model's tower: ``probabilities=False``) has the
    absolute tolerance as its only check: a tower whose torch weights moved after its export must be refused."""
    torch.manual_seed(0)
    graph, side = ESAM(SPEC, ESAMConfig(feature_dim=4, hidden=[8], embedding_dim=6)).export_graphs()["item_tower.onnx"]
    side_spec, path = SPEC.for_side(side), tmp_path / "item_tower.onnx"
    export_onnx(graph, side_spec, path)
    assert check_parity(graph, side_spec, path, probabilities=False) <= PARITY_TOLERANCE  # as exported, it agrees
    with torch.no_grad():
        graph.tower.mlp[-1].bias.add_(0.01)
    with pytest.raises(ParityError, match=r"ONNX Runtime differs from torch by"):
        check_parity(graph, side_spec, path, probabilities=False)
