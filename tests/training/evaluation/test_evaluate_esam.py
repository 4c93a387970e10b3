"""`ctr evaluate esam`: the exported towers, run by ONNX Runtime as served, against the world's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from common.repository import CATALOG_EMBEDDINGS, MODEL_FILE, sha256_file, version_dir
from tests.support.retrieval import TINY_ESAM_CONFIG
from training.retrieval_pipeline import evaluate_retrieval


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate") / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text('evaluation = "retrieval"\n' + TINY_ESAM_CONFIG)
    common = ["--repository", str(root), "--work-dir", str(root.parent / "work")]
    for command in (["train", "esam", "--no-progress"], ["export", "esam"]):
        result = CliRunner().invoke(app, [*command, *common])
        assert result.exit_code == 0, result.output + repr(result.exception)
    return root


def test_cli_writes_hot_and_long_tail_recall(repository: Path, tmp_path: Path) -> None:
    out = tmp_path / "esam_eval.json"
    result = CliRunner().invoke(app, ["evaluate", "esam", "--out", str(out), "--repository", str(repository)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert report["model"] == "esam" and report["version"] == 1 and report["world"] == "attributes"
    # "esam v1" is another model on each machine (versions are not committed): the esmm report named its sha256
    assert report["onnx_sha256"] == sha256_file(version_dir(repository, "esam", 1) / MODEL_FILE)
    for group in ("all", "hot", "long_tail"):
        assert set(report[group]) == {"recall@10", "recall@50", "ndcg@10", "ndcg@50"}
        assert all(0.0 <= v <= 1.0 for v in report[group].values())
    assert "long_tail" in result.output


def test_the_default_report_is_the_models_own(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out the report goes to reports/evaluation_NAME.json: every model's went to reports/evaluation.json,
    so evaluating a second model overwrote the first's report without a word."""
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "reports" / "evaluation_esmm.json"  # another model's report, written before
    other.parent.mkdir()
    other.write_text('{"model": "esmm"}\n')
    result = CliRunner().invoke(app, ["evaluate", "esam", "--repository", str(repository)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert result.output.splitlines()[-1] == "wrote reports/evaluation_esam.json"
    assert json.loads((tmp_path / "reports" / "evaluation_esam.json").read_text())["model"] == "esam"
    assert other.read_text() == '{"model": "esmm"}\n'


def test_report_is_the_torch_model_ranking_the_same_queries(repository: Path) -> None:
    """What ONNX Runtime and the stored embeddings give equals the trained torch towers' ranking."""
    from common.encoder import FeatureEncoder
    from training.evaluation.retrieval_metrics import retrieval_metrics
    from training.fitting.checkpoint import Checkpoint
    from training.model_config import ModelConfig
    from training.retrieval_pipeline import EVALUATION_SEED, catalog_scores, item_groups
    from training.training_files import checkpoint_path
    from training.world import World, WorldConfig
    from training.world.retrieval import RetrievalConfig, RetrievalView

    report = evaluate_retrieval(repository, "esam")
    checkpoint = Checkpoint.load(checkpoint_path(repository.parent / "work", "esam"))
    config = ModelConfig.load(repository, "esam")
    view = RetrievalView(World(WorldConfig(**config.world)), RetrievalConfig(n_candidates=20, n_slots=5, n_relevant=20))
    queries = view.queries(report["n_queries"], EVALUATION_SEED + 1)
    query = FeatureEncoder(checkpoint.spec.for_side("context")).encode(view.query_columns(queries), len(queries))
    items = FeatureEncoder(checkpoint.spec.for_side("candidate")).encode(view.item_columns(), view.n_items)
    scores = catalog_scores(checkpoint.build(), (query.categorical, query.numeric), (items.categorical, items.numeric))
    expected = retrieval_metrics(scores, view.relevant_items(queries), item_groups(view))
    for group, values in expected.items():
        assert report[group] == pytest.approx(values, abs=1e-3), group


def test_a_tampered_catalog_is_refused(repository: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(repository, copy)
    directory = copy / "esam" / "1"
    embeddings = np.load(directory / CATALOG_EMBEDDINGS)
    np.save(directory / CATALOG_EMBEDDINGS, embeddings[::-1])
    with pytest.raises(ValueError, match="sha256"):
        evaluate_retrieval(copy, "esam")
