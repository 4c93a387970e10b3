"""early_stop_patience: the main phase ends after N epochs without a new best, the best epoch's weights kept."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch

from common.repository import MANIFEST_FILE, version_dir
from tests.support.exported_scores import onnx_scores
from tests.support.noise_logs import ADVERSARIAL_OVERFITTING, OVERFITTING, STEADY, repository, write_log
from training.fitting.distributed_train import train_streaming
from training.fitting.epoch_validation import EpochValidation
from training.fitting.fit import TrainingPhase, run_phases
from training.fitting.kept_epoch import KeptEpoch, kept_by
from training.model_config import ModelConfig
from training.pipeline import train

PATIENT = "keep_best_epoch = true\nearly_stop_patience = 2\n"


def test_an_overfitting_run_stops_two_epochs_after_its_best_and_exports_it(tmp_path, caplog):
    logs = write_log(tmp_path / "noise.csv", noise=True)
    with caplog.at_level(logging.INFO):
        models = repository(tmp_path / "s", OVERFITTING + PATIENT)
        stopped = train("m", models, logs, work_dir=tmp_path / "s" / "w", progress=False)
    one_models = repository(tmp_path / "one", OVERFITTING.replace("epochs = 8", "epochs = 1"))
    one = train("m", one_models, logs, work_dir=tmp_path / "one" / "w", progress=False)

    by_epoch = stopped.metrics["validation_by_epoch"]
    judged = [kept_by(record)[1] for record in by_epoch]
    assert len(judged) == 3 and judged[0] < min(judged[1:])  # epochs 2 and 3 no better than the first: stop
    assert stopped.metrics["kept_epoch"] == {
        "epoch": 1,
        "epochs": 8,
        "epochs_trained": 3,
        "judged_by": "ctr_logloss + ctcvr_logloss",
        "validation_loss": judged[0],
        "last_epoch_validation_loss": judged[2],
        "early_stop_patience": 2,
        "stopped_early": True,
    }
    assert stopped.metrics["ctr_logloss"] == one.metrics["ctr_logloss"]
    assert stopped.metrics["training_loss"] == by_epoch[0]["training_loss"]
    assert all(torch.equal(stopped.state_dict[name], one.state_dict[name]) for name in one.state_dict)
    said = "early stop after epoch 3 of 8: no lower validation ctr_logloss + ctcvr_logloss for 2 epochs"
    assert said in caplog.text and "keeping epoch 1," in caplog.text
    assert "train: 3 of 8 epochs (an early stop)" in caplog.text

    for stopped_scores, one_scores in zip(
        onnx_scores(stopped, tmp_path / "onnx"), onnx_scores(one, tmp_path / "one_onnx"), strict=True
    ):
        np.testing.assert_array_equal(stopped_scores, one_scores)
    recorded = json.loads((version_dir(tmp_path / "onnx", "m", 1) / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert recorded["training"]["epochs"] == 8 and recorded["training"]["early_stop_patience"] == 2  # configured
    assert (
        recorded["metrics"]["kept_epoch"]["epochs_trained"] == 3 and recorded["metrics"]["kept_epoch"]["stopped_early"]
    )
    assert len(recorded["metrics"]["validation_by_epoch"]) == 3  # trained


def test_a_steadily_improving_run_trains_every_epoch_as_without_the_key(tmp_path):
    logs = write_log(tmp_path / "signal.csv", noise=False)
    patient = repository(tmp_path / "p", STEADY + "keep_best_epoch = true\nearly_stop_patience = 1\n")
    stopped = train("m", patient, logs, work_dir=tmp_path / "p" / "w", progress=False)
    kept_models = repository(tmp_path / "k", STEADY + "keep_best_epoch = true\n")
    kept = train("m", kept_models, logs, work_dir=tmp_path / "k" / "w", progress=False)

    judged = [kept_by(record)[1] for record in stopped.metrics["validation_by_epoch"]]
    assert len(judged) == 3 and judged[0] > judged[1] > judged[2]  # a new best every epoch
    assert stopped.metrics["kept_epoch"]["epoch"] == stopped.metrics["kept_epoch"]["epochs_trained"] == 3
    assert stopped.metrics["kept_epoch"]["stopped_early"] is False
    assert all(torch.equal(stopped.state_dict[name], kept.state_dict[name]) for name in kept.state_dict)


def test_the_adversarial_kind_s_bias_phase_runs_its_epochs_after_an_early_stop(tmp_path, caplog):
    """The main phase stops after epoch 2 (epoch 1 the best, patience 1); the bias phase then trains its 2 epochs
    from the kept weights and moves the adversary (``bias.``) alone, as after a main phase of its last epoch."""
    logs = write_log(tmp_path / "noise.csv", noise=True, slots=3)
    patient = ADVERSARIAL_OVERFITTING + "keep_best_epoch = true\nearly_stop_patience = 1\n"
    with caplog.at_level(logging.INFO):
        stopped = train("m", repository(tmp_path / "s", patient), logs, work_dir=tmp_path / "s" / "w", progress=False)
    one_models = repository(tmp_path / "one", ADVERSARIAL_OVERFITTING.replace("\nepochs = 8", "\nepochs = 1"))
    one = train("m", one_models, logs, work_dir=tmp_path / "one" / "w", progress=False)

    assert stopped.metrics["kept_epoch"]["epoch"] == 1 and stopped.metrics["kept_epoch"]["epochs_trained"] == 2
    assert "adversarial: 2 of 8 epochs (an early stop)" in caplog.text and "bias: 2 epochs" in caplog.text
    adversary = {name for name in stopped.state_dict if name.startswith("bias.")}
    assert adversary and all(
        torch.equal(stopped.state_dict[name], one.state_dict[name]) for name in one.state_dict if name not in adversary
    )
    assert stopped.metrics["ctr_logloss_logged_b"] == one.metrics["ctr_logloss_logged_b"]  # scored after the phase


def test_a_streamed_run_stops_as_in_memory(tmp_path, caplog):
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(
        pacsv.read_csv(write_log(tmp_path / "noise.csv", noise=True)), shards / "p.parquet", row_group_size=100
    )
    with caplog.at_level(logging.INFO):
        stopped = train_streaming(
            "m", shards, root=repository(tmp_path / "s", OVERFITTING + PATIENT), work_dir=tmp_path / "w1",
            distributed=False, progress=False,
        )  # fmt: skip
    one_models = repository(tmp_path / "one", OVERFITTING.replace("epochs = 8", "epochs = 1"))
    one = train_streaming("m", shards, root=one_models, work_dir=tmp_path / "w2", distributed=False, progress=False)

    assert stopped.metrics["kept_epoch"]["epoch"] == 1 and stopped.metrics["kept_epoch"]["epochs_trained"] == 3
    assert len(stopped.metrics["validation_by_epoch"]) == 3 and "early stop after epoch 3 of 8" in caplog.text
    assert all(torch.equal(stopped.state_dict[name], one.state_dict[name]) for name in one.state_dict)


def test_every_process_stops_after_the_same_epoch_from_rank_0_s_verdicts():
    """Streamed by two processes, rank 0 alone scores; rank 1 learns only rank 0's verdicts (the all_gather of
    ``group.gather(verdict)[0]``). Both must leave the main phase after the same epoch holding the same epoch's
    weights: a process training one epoch more waits on the others in its collective operations."""
    losses = iter([0.5, 0.4, 0.45, 0.41, 0.3, 0.2])  # the best after epoch 2, then two worse: stop after epoch 4
    shared: list[bool] = []

    def rank_0_shares(verdict: bool) -> bool:
        shared.append(verdict)
        return verdict

    def trained(kept_epoch) -> tuple[int, float]:
        kept, weight = _counted_epochs(kept_epoch, 6)
        return kept.trained, weight

    validated = EpochValidation(lambda: {"ctr_logloss": next(losses)}, 6)
    rank_0 = trained(lambda model: KeptEpoch(model, validated, 6, rank_0_shares, patience=2))
    received = iter(shared)
    rank_1 = trained(lambda model: KeptEpoch(model, None, 6, lambda _: next(received), patience=2))
    assert rank_0 == rank_1 == (4, 2.0)


def _counted_epochs(kept_epoch, epochs: int) -> tuple[KeptEpoch, float]:
    """(the KeptEpoch ``kept_epoch(model)`` after a main phase of ``epochs``, the weight the model holds then) of a
    model whose one weight counts the epochs trained: the weight kept says which epoch's it is."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)

    def step(_batch) -> float:
        with torch.no_grad():
            model.weight += 1.0
        return 0.0

    kept = kept_epoch(model)
    run_phases(model, [TrainingPhase("train", epochs, step)], lambda _: [{"click": torch.zeros(1)}], 1, False, kept)
    return kept, float(model.weight.detach())


def _counting_run(losses: list[float], patience: int) -> KeptEpoch:
    """The KeptEpoch of a main phase of len(``losses``) epochs, each epoch's validation log loss the next of
    ``losses``; the model holds the kept epoch's weights after it."""
    scores, epochs = iter(losses), len(losses)
    validated = EpochValidation(lambda: {"ctr_logloss": next(scores)}, epochs)
    kept, weight = _counted_epochs(lambda model: KeptEpoch(model, validated, epochs, patience=patience), epochs)
    assert weight == kept.epoch
    return kept


def test_a_tie_keeps_the_earlier_epoch_and_a_patience_that_runs_out_at_the_last_epoch_is_no_early_stop():
    """A later epoch only as good as the kept one is not kept (fewer epochs for the same validation loss); and a
    run whose patience ran out with its last configured epoch trained every epoch: model.json's
    ``kept_epoch.stopped_early`` is false, as its line says no early stop."""
    tie = _counting_run([0.5, 0.4, 0.4], patience=0)
    assert (tie.epoch, tie.trained) == (2, 3)
    last = _counting_run([0.5, 0.4, 0.45, 0.46], patience=2)
    assert (last.epoch, last.trained) == (2, 4)
    assert last.record()["stopped_early"] is False


def test_without_validation_rows_it_warns_and_trains_every_epoch(tmp_path, caplog):
    logs = write_log(tmp_path / "noise.csv", noise=True)
    config = OVERFITTING.replace("validation_fraction = 0.3", "validation_fraction = 0.0").replace("= 8", "= 3")
    with caplog.at_level(logging.INFO):
        trained = train("m", repository(tmp_path, config + PATIENT), logs, work_dir=tmp_path / "w", progress=False)
    assert "kept_epoch" not in trained.metrics and "train: 3 epochs," in caplog.text
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "patience" in r.getMessage()]
    assert len(warned) == 1 and "early_stop_patience = 2 stops nothing: every configured epoch trains" in warned[0]


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("early_stop_patience = 2", "[training] early_stop_patience = 2 needs keep_best_epoch = true"),
        ("early_stop_patience = 2\nkeep_best_epoch = false", "early_stop_patience = 2 needs keep_best_epoch = true"),
        ("early_stop_patience = -1\nkeep_best_epoch = true", "[training] early_stop_patience must be >= 0"),
        ("early_stop_patience = 1.5\nkeep_best_epoch = true", "[training] early_stop_patience = 1.5: expected an int"),
        (
            "early_stop_patience = true\nkeep_best_epoch = true",
            "[training] early_stop_patience = true: expected an int",
        ),
    ],
)
def test_a_patience_it_cannot_train_with_is_refused_as_the_config_loads(tmp_path, setting, said):
    models = repository(tmp_path, OVERFITTING.replace("epochs = 8", "epochs = 8\n" + setting))
    with pytest.raises(ValueError, match="early_stop_patience") as refused:
        ModelConfig.load(models, "m")
    assert said in str(refused.value)
