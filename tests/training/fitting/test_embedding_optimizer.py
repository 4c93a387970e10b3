"""[training] embedding_optimizer: dense Adam by default, SparseAdam for the embedding table when asked (lazy:
rows no minibatch looked up stay where they are), and a model so trained exports and scores as any other."""

import json

import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from common.repository import MODEL_FILE, read_manifest, version_dir
from tests.support.own_logs import SPEC_TOML, write_logs
from training.fitting.fit import model_phases
from training.fitting.settings import TrainingConfig
from training.models.registry import build_model


def batch(ids: list[int]) -> dict[str, torch.Tensor]:
    """Rows whose three categorical features (site, creative, weekday) all look up the buckets ``ids`` (one a
    row), clicks alternating."""
    rows = len(ids)
    return {
        "categorical": torch.tensor([[i] * 3 for i in ids]),
        "numeric": torch.zeros(rows, 1),
        "click": torch.tensor([i % 2 for i in range(rows)]),
        "conversion": torch.zeros(rows, dtype=torch.long),
        "position": torch.ones(rows, dtype=torch.long),
    }


def table_after_two_steps(tmp_path, embedding_optimizer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedding table before and after a second step that looks up buckets 10-13 only (the first: 0-3)."""
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    spec = FeatureSpec.from_toml(tmp_path / "spec.toml")
    model = build_model("esmm", spec, {"embedding_dim": 4, "hidden": [8]}, seed=0)
    step = model_phases(model, TrainingConfig(learning_rate=0.01, embedding_optimizer=embedding_optimizer))[0].step
    step(batch([0, 1, 2, 3]))
    before = model.ctr_embedding.table.weight.detach().clone()
    step(batch([10, 11, 12, 13]))
    return before, model.ctr_embedding.table.weight.detach()


def test_sparse_adam_leaves_rows_the_step_did_not_look_up_where_dense_adam_moves_them(tmp_path):
    dense_before, dense_after = table_after_two_steps(tmp_path, "adam")
    sparse_before, sparse_after = table_after_two_steps(tmp_path, "sparse_adam")
    unseen = [0, 1, 2, 3]  # looked up by the first step only: dense Adam's moments move them on
    assert not torch.equal(dense_after[unseen], dense_before[unseen])
    assert torch.equal(sparse_after[unseen], sparse_before[unseen])
    assert not torch.equal(sparse_after[[10, 11, 12, 13]], sparse_before[[10, 11, 12, 13]])
    assert torch.equal(sparse_after[20:], sparse_before[20:])  # never looked up


def test_a_model_trained_with_sparse_adam_exports_and_scores(tmp_path):
    models = tmp_path / "models"
    (models / "esmm").mkdir(parents=True)
    (models / "esmm" / "config.toml").write_text(
        'kind = "esmm"\n[model]\nembedding_dim = 4\nhidden = [16, 8]\n[training]\nepochs = 3\nbatch_size = 64\n'
        'learning_rate = 0.01\nvalidation_fraction = 0.2\nembedding_optimizer = "sparse_adam"\n',
        encoding="utf-8",
    )
    write_logs(tmp_path / "logs.csv")
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    common = ["--repository", str(models), "--work-dir", str(tmp_path / "work")]
    runner = CliRunner()
    arguments = ["train", "esmm", "--logs", str(tmp_path / "logs.csv"), "--spec", str(tmp_path / "spec.toml")]
    trained = runner.invoke(app, [*arguments, "--no-progress", *common])
    assert trained.exit_code == 0, trained.output
    exported = runner.invoke(app, ["export", "esmm", *common])
    assert exported.exit_code == 0, exported.output
    record = json.loads((version_dir(models, "esmm", 1) / "model.json").read_text(encoding="utf-8"))
    assert record["training"]["embedding_optimizer"] == "sparse_adam"
    session = ort.InferenceSession(str(version_dir(models, "esmm", 1) / MODEL_FILE))
    manifest = read_manifest(models, "esmm", 1)
    encoded = FeatureEncoder(manifest.feature_spec).encode({"site": "s1", "creative": [0, 1], "bid": [1.0, 1.0]}, 2)
    pctr, _, _ = session.run(["pctr", "pcvr", "pctcvr"], encoded.as_inputs())
    assert pctr[0] > pctr[1]  # the even creative is clicked more (tests/support/own_logs.py's log)


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"embedding_optimizer": "lazy"}, "must be one of adam, sparse_adam, not 'lazy'"),
        ({"embedding_optimizer": "sparse_adam", "weight_decay": 0.01}, "takes no weight_decay"),
    ],
)
def test_an_embedding_optimizer_that_cannot_run_is_refused(settings, said):
    with pytest.raises(ValueError, match=said):
        TrainingConfig(**settings)


def test_sparse_adam_beside_the_papers_sgd_is_refused(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    model = build_model("adversarial_ctr", FeatureSpec.from_toml(tmp_path / "spec.toml"), {"optimizer": "sgd"}, seed=0)
    with pytest.raises(ValueError, match='needs \\[model\\] optimizer = "adam"'):
        model_phases(model, TrainingConfig(embedding_optimizer="sparse_adam"))
