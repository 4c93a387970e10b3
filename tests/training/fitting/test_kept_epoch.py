"""keep_best_epoch: the weights of the epoch that validated best are the ones checkpointed and exported."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

from common.repository import CATALOG_EMBEDDINGS, version_dir
from tests.support.exported_scores import onnx_scores
from tests.support.noise_logs import ADVERSARIAL_OVERFITTING, OVERFITTING, repository, write_log
from tests.support.own_retrieval_logs import CONFIG_TOML, write_pair
from training.export import export_checkpoint, random_inputs
from training.fitting.checkpoint import Checkpoint
from training.fitting.distributed_train import train_streaming
from training.fitting.fit import TrainingPhase, run_phases
from training.fitting.kept_epoch import kept_by
from training.pipeline import train
from training.training_files import checkpoint_path


def tower_outputs(checkpoint: Checkpoint, root) -> list[np.ndarray]:
    """A retrieval model's exported towers on random inputs of their sides, and its catalog embeddings."""
    export_checkpoint(checkpoint, root)
    directory = version_dir(root, checkpoint.name, 1)
    outputs = [np.load(directory / CATALOG_EMBEDDINGS)]
    for file_name, (_, side) in checkpoint.build().export_graphs().items():
        session = ort.InferenceSession(str(directory / file_name), providers=["CPUExecutionProvider"])
        outputs += session.run(None, random_inputs(checkpoint.spec.for_side(side), 200, seed=7))
    return outputs


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
        "epochs_trained": 8,
        "judged_by": "ctr_logloss + ctcvr_logloss",
        "validation_loss": judged[0],
        "last_epoch_validation_loss": judged[-1],
        "early_stop_patience": 0,
        "stopped_early": False,
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


def test_a_streamed_run_keeps_its_first_epoch_too(tmp_path, caplog):
    shards = tmp_path / "shards"
    shards.mkdir()
    table = pacsv.read_csv(write_log(tmp_path / "noise.csv", noise=True))
    pq.write_table(table, shards / "part-0.parquet", row_group_size=100)
    kept_models = repository(tmp_path / "kept", OVERFITTING + "keep_best_epoch = true\n")
    with caplog.at_level(logging.INFO):
        kept = train_streaming(
            "m", shards, root=kept_models, work_dir=tmp_path / "w1", distributed=False, progress=False
        )
    one_models = repository(tmp_path / "one", OVERFITTING.replace("epochs = 8", "epochs = 1"))
    one = train_streaming("m", shards, root=one_models, work_dir=tmp_path / "w2", distributed=False, progress=False)

    assert kept.metrics["kept_epoch"]["epoch"] == 1 and len(kept.metrics["validation_by_epoch"]) == 8
    assert kept.metrics["ctr_logloss"] == one.metrics["ctr_logloss"]
    assert all(torch.equal(kept.state_dict[name], one.state_dict[name]) for name in one.state_dict)
    assert caplog.text.count("validation after epoch") == 8 and "keeping epoch 1 of 8" in caplog.text
    assert "predicts worse than a constant" in caplog.text  # this noise log's, said as in memory


def test_keep_best_epoch_without_validation_rows_says_the_last_epoch_is_exported(tmp_path, caplog):
    """validation_fraction = 0 leaves no epoch judged: the key did nothing and the last epoch's weights were
    exported without a word, to a user who had asked for the best one."""
    logs = write_log(tmp_path / "noise.csv", noise=True)
    config = OVERFITTING.replace("validation_fraction = 0.3", "validation_fraction = 0.0").replace(
        "epochs = 8", "epochs = 2"
    )
    models = repository(tmp_path / "none", config + "keep_best_epoch = true\n")
    with caplog.at_level(logging.INFO):
        trained = train("m", models, logs, work_dir=tmp_path / "none" / "work", progress=False)
    assert "kept_epoch" not in trained.metrics
    warned = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "keep_best_epoch" in r.getMessage()
    ]
    assert len(warned) == 1 and "the last epoch's weights" in warned[0]


# ESAM on _write_pair's 40 requests: 8 epochs of 8-request batches at lr 0.05 with 16-wide features validate
# best after epoch 5 (click_logloss 0.461; 0.531 before it, 0.589 after it, 0.500 after the last)
ESAM_OVERFITTING = CONFIG_TOML.replace("feature_dim = 4", "feature_dim = 16").replace(
    "batch_size = 16", "batch_size = 8"
)


def test_esam_keeps_and_exports_its_best_epoch(tmp_path):
    """The retrieval model, judged by its click_logloss over the held-out requests (padding excluded)."""
    displayed, other, spec = write_pair(tmp_path)

    def trained(name: str, epochs: str) -> Checkpoint:
        config = ESAM_OVERFITTING.replace("epochs = 2", f"{epochs}\nlearning_rate = 0.05")
        (tmp_path / name / "models" / "m").mkdir(parents=True)
        (tmp_path / name / "models" / "m" / "config.toml").write_text(config, encoding="utf-8")
        work = tmp_path / name / "work"
        return train("m", tmp_path / name / "models", displayed, spec, work, progress=False, non_displayed=other)

    kept = trained("kept", "epochs = 8\nkeep_best_epoch = true")
    five = trained("five", "epochs = 5")

    judged = [kept_by(record)[1] for record in kept.metrics["validation_by_epoch"]]
    assert len(judged) == 8 and min(judged) == judged[4] < min(judged[3], judged[5], judged[7]) - 0.03
    assert kept.metrics["kept_epoch"]["epoch"] == 5 and kept.metrics["kept_epoch"]["judged_by"] == "click_logloss"
    assert kept.metrics["click_logloss"] == judged[4] == five.metrics["click_logloss"]
    saved = Checkpoint.load(checkpoint_path(tmp_path / "kept" / "work", "m"))
    assert all(torch.equal(saved.state_dict[name], five.state_dict[name]) for name in five.state_dict)
    for kept_out, five_out in zip(
        tower_outputs(saved, tmp_path / "kept_onnx"), tower_outputs(five, tmp_path / "five_onnx"), strict=True
    ):
        np.testing.assert_array_equal(kept_out, five_out)


def test_the_adversarial_kind_s_bias_phase_trains_on_from_the_kept_epoch(tmp_path):
    """The two-phase ctr kind: the main phase's best epoch is put back before the bias phase, which moves the
    adversary (``bias.``) alone: every other weight, hence every score, is the kept epoch's, scored again."""
    logs = write_log(tmp_path / "noise.csv", noise=True, slots=3)
    kept_models = repository(tmp_path / "kept", ADVERSARIAL_OVERFITTING + "keep_best_epoch = true\n")
    kept = train("m", kept_models, logs, work_dir=tmp_path / "kept" / "work", progress=False)
    one_models = repository(tmp_path / "one", ADVERSARIAL_OVERFITTING.replace("\nepochs = 8", "\nepochs = 1"))
    one = train("m", one_models, logs, work_dir=tmp_path / "one" / "work", progress=False)

    by_epoch = kept.metrics["validation_by_epoch"]
    judged = [kept_by(record)[1] for record in by_epoch]
    assert len(judged) == 8 and min(judged) == judged[0] < judged[1] - 0.05  # overfits from epoch 2 on
    assert kept.metrics["kept_epoch"]["epoch"] == 1
    assert kept.metrics["kept_epoch"]["judged_by"] == "ctr_logloss_logged_b"
    adversary = {name for name in kept.state_dict if name.startswith("bias.")}
    assert adversary and all(
        torch.equal(kept.state_dict[name], one.state_dict[name]) for name in kept.state_dict if name not in adversary
    )
    assert kept.metrics["ctr_logloss_logged_b"] == judged[0] == one.metrics["ctr_logloss_logged_b"]
    for kept_scores, one_scores in zip(
        onnx_scores(kept, tmp_path / "kept_onnx"), onnx_scores(one, tmp_path / "one_onnx"), strict=True
    ):
        np.testing.assert_array_equal(kept_scores, one_scores)


class _TwoProcesses:
    """A streamed run's group as rank 0 sees it: the other process's epoch loss was 1.0 higher than its own."""

    is_main = True

    def mean(self, value: float) -> float:
        return value + 0.5


def test_each_epoch_is_recorded_with_the_processes_mean_training_loss():
    # keep_best_epoch's summary takes the kept epoch's training_loss from the per-epoch records: rank 0's own loss
    # there replaced the processes' mean that model.json records without the key
    phase = TrainingPhase("train", 2, lambda batch: 0.25)
    recorded: list[float] = []
    main_loss = run_phases(
        torch.nn.Linear(1, 1),
        [phase],
        lambda _: [{"click": torch.zeros(4)}],
        1,
        progress=False,
        after_epoch=lambda epoch, loss: recorded.append(loss),
        group=_TwoProcesses(),  # type: ignore[arg-type]
    )
    assert recorded == [0.75, 0.75]
    assert main_loss == 0.75
