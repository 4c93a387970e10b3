"""keep_best_epoch: the weights of the epoch that validated best are the ones checkpointed and exported."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import torch

from common.repository import MODEL_FILE, version_dir
from tests.training.noise_logs import OVERFITTING, repository, write_log
from training.checkpoint import Checkpoint
from training.export import export_checkpoint, random_inputs
from training.kept_epoch import kept_by
from training.pipeline import checkpoint_path, train


def onnx_scores(checkpoint: Checkpoint, root) -> list[np.ndarray]:
    export_checkpoint(checkpoint, root)
    session = ort.InferenceSession(str(version_dir(root, "m", 1) / MODEL_FILE), providers=["CPUExecutionProvider"])
    return session.run(["pctr", "pcvr", "pctcvr"], random_inputs(checkpoint.spec, 500, seed=7))


def test_an_overfitting_run_keeps_and_exports_its_first_epoch(tmp_path, caplog):
    logs = write_log(tmp_path / "noise.csv", noise=True)
    kept_models = repository(tmp_path / "kept", OVERFITTING + "keep_best_epoch = true\n")
    with caplog.at_level(logging.INFO):
        kept = train("m", kept_models, logs, work_dir=tmp_path / "kept" / "work", progress=False)
    one_models = repository(tmp_path / "one", OVERFITTING.replace("epochs = 8", "epochs = 1"))
    one = train("m", one_models, logs, work_dir=tmp_path / "one" / "work", progress=False)

    by_epoch = kept.metrics["validation_by_epoch"]
    judged = [kept_by(record)[1] for record in by_epoch]
    assert len(judged) == 8 and min(judged) == judged[0] < judged[-1]  # the setting overfits from epoch 2 on
    assert kept.metrics["kept_epoch"] == {
        "epoch": 1,
        "epochs": 8,
        "judged_by": "ctr_logloss + ctcvr_logloss",
        "validation_loss": judged[0],
        "last_epoch_validation_loss": judged[-1],
    }
    assert kept.metrics["ctr_logloss"] == by_epoch[0]["ctr_logloss"] == one.metrics["ctr_logloss"]
    assert kept.metrics["training_loss"] == by_epoch[0]["training_loss"]
    assert "keeping epoch 1 of 8" in caplog.text and "after the last epoch" not in caplog.text

    saved = Checkpoint.load(checkpoint_path(tmp_path / "kept" / "work", "m"))  # what `ctr export` reads
    assert saved.state_dict.keys() == one.state_dict.keys()
    assert all(torch.equal(saved.state_dict[name], one.state_dict[name]) for name in one.state_dict)
    for kept_scores, one_scores in zip(
        onnx_scores(saved, tmp_path / "kept_onnx"), onnx_scores(one, tmp_path / "one_onnx"), strict=True
    ):
        np.testing.assert_array_equal(kept_scores, one_scores)


def test_without_the_key_the_last_epoch_is_exported(tmp_path):
    logs = write_log(tmp_path / "noise.csv", noise=True)
    last = train("m", repository(tmp_path, OVERFITTING), logs, work_dir=tmp_path / "work", progress=False)
    assert "kept_epoch" not in last.metrics
    assert last.metrics["ctr_logloss"] == last.metrics["validation_by_epoch"][-1]["ctr_logloss"]
