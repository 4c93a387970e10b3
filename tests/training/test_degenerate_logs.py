"""Degenerate own logs (an audit's `ctr train NAME --logs LOG` on them): clicks only in the held-out tail, clicks
that never converted, the top slot only in the tail or numbered 0, ads sharing a slot. Each trained silently or
was refused without the way out; now each is refused or warned of in one line saying what is wrong and what to do."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.fitting.distributed_train import train_streaming
from training.pipeline import train

SPEC = """
[[feature]]
name = "creative"
kind = "categorical"
side = "candidate"
buckets = 32

[[feature]]
name = "bid"
kind = "numeric"
side = "candidate"
"""
MODEL = {"esmm": "hidden = [8]", "esmm_debiased": "hidden = [8]", "adversarial_ctr": "prediction_hidden = [8]"}
TINY = """
[training]
epochs = 1
batch_size = 128
validation_fraction = 0.2
"""
ROWS = 1000  # the training rows: the first 800, the held-out tail the last 200


def write_log(path: Path, click: np.ndarray, conversion: np.ndarray | None = None, **columns: list) -> Path:
    """A log in time order, three slots a request; ``columns`` replace the generated ones."""
    rng = np.random.default_rng(0)
    rows = len(click)
    table = {
        "request_id": [f"r{i // 3}" for i in range(rows)],
        "ts": list(range(1_700_000_000, 1_700_000_000 + rows)),
        "creative": [str(c) for c in rng.integers(0, 20, rows)],
        "bid": rng.uniform(0.1, 2.0, rows).tolist(),
        "position": [i % 3 + 1 for i in range(rows)],
        "click": click.astype(np.int64),
        "conversion": (np.zeros(rows) if conversion is None else conversion).astype(np.int64),
    }
    pq.write_table(pa.table({**table, **columns}), path, row_group_size=250)
    return path


def clicks(rows: int = ROWS, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random(rows) < 0.2).astype(np.int64)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    for kind, model in MODEL.items():
        (tmp_path / "models" / kind).mkdir(parents=True)
        config = f'kind = "{kind}"\n[model]\nembedding_dim = 4\n{model}\n{TINY}'
        (tmp_path / "models" / kind / "config.toml").write_text(config, encoding="utf-8")
        (tmp_path / "models" / kind / "spec.toml").write_text(SPEC, encoding="utf-8")
    return tmp_path / "models"


def test_clicks_only_in_the_held_out_tail_are_refused_by_both_trainers(models, tmp_path):
    """The clicks were counted over the whole log: one whose clicks all lay in its held-out tail trained on
    none (last epoch's loss 0.00001) and served a pCTR of 8e-5, without a word."""
    click = clicks()
    click[:800] = 0
    logs = write_log(tmp_path / "late.parquet", click)
    said = (
        "the training rows (the first 80% of the log's rows) of {}: click is 0 on every row of 800 impressions "
        f"(the held-out tail, the latest 20%, holds {int(click.sum())} clicks of its 200"
    )
    with pytest.raises(ValueError) as memory:
        train("esmm", models, logs, work_dir=tmp_path / "work", progress=False)
    assert said.format(logs) in str(memory.value)
    with pytest.raises(ValueError) as streamed:
        train_streaming("esmm", logs, None, models, tmp_path / "stream", distributed=False, progress=False)
    assert str(streamed.value) == str(memory.value)
    assert not (tmp_path / "work" / "esmm" / "checkpoint.pt").exists()


@pytest.mark.parametrize("converted", ["none", "all"])
def test_clicks_that_never_or_always_convert_are_warned_of_for_a_model_serving_pcvr(
    models, tmp_path, caplog, converted
):
    """A log without a conversion trained esmm's pcvr to 1e-4 with no word, and model.json's ctcvr_logloss of
    5e-6 looked excellent; a model without pcvr (adversarial_ctr) has nothing to warn of."""
    click = clicks()
    logs = write_log(tmp_path / "log.parquet", click, click if converted == "all" else None)
    caplog.set_level(logging.WARNING)
    train("esmm", models, logs, work_dir=tmp_path / "work", progress=False)
    training_clicks = int(click[:800].sum())
    said = "none of their" if converted == "none" else "every one of their"
    learns = "0 (a conversion join that lost its rows?)" if converted == "none" else "1 (a conversion join that kept"
    warned = [r.getMessage() for r in caplog.records if "pcvr learns" in r.getMessage()]
    assert warned == [
        f"the training rows (the first 80% of the log's rows) of {logs}: {said} {training_clicks} clicks converted, "
        f"so pcvr learns {learns}" + warned[0].split(learns)[1]
    ]
    caplog.clear()
    train("adversarial_ctr", models, logs, work_dir=tmp_path / "work", progress=False)
    assert "pcvr learns" not in caplog.text


def test_a_log_with_some_conversions_is_not_warned_of(models, tmp_path, caplog):
    click = clicks()
    logs = write_log(tmp_path / "log.parquet", click, click * (np.arange(ROWS) % 2))
    caplog.set_level(logging.WARNING)
    train("esmm", models, logs, work_dir=tmp_path / "work", progress=False)
    assert "pcvr learns" not in caplog.text


def test_a_top_slot_only_in_the_held_out_tail_is_refused_naming_the_training_rows_and_the_way_out(models, tmp_path):
    """ "the training logs have no position-1 impressions to fix b from" named neither which rows nor what to do,
    for a log whose position-1 rows were all in its tail."""
    position = [i % 3 + 2 if i < 800 else i % 3 + 1 for i in range(ROWS)]
    logs = write_log(tmp_path / "log.parquet", clicks(), position=position)
    with pytest.raises(ValueError) as memory:
        train("esmm_debiased", models, logs, work_dir=tmp_path / "work", progress=False)
    assert str(memory.value) == (
        "the training rows (the first 80% of the log's rows) hold no position-1 impression to fix b from (the CTR a "
        "slot-1 model serves for): number the top slot 1 in the logs, or train a position-blind kind such as esmm"
    )
    with pytest.raises(ValueError) as streamed:
        train_streaming("esmm_debiased", logs, None, models, tmp_path / "stream", distributed=False, progress=False)
    assert str(streamed.value) == str(memory.value)


def test_zero_based_positions_are_refused_saying_positions_are_one_based(models, tmp_path):
    logs = write_log(tmp_path / "log.parquet", clicks(), position=[i % 3 for i in range(ROWS)])
    with pytest.raises(ValueError) as refused:
        train("esmm", models, logs, work_dir=tmp_path / "work", progress=False)
    assert "position must be an integer of at least 1 on every row; 334 rows are not (the first, row 0, is 0)" in str(
        refused.value
    )
    assert str(refused.value).endswith("(positions are 1-based: the top slot is 1; add 1 to 0-based positions)")
    negative = write_log(tmp_path / "negative.parquet", clicks(), position=[1 - 2 * (i % 2) for i in range(ROWS)])
    with pytest.raises(ValueError) as refused:  # -1 is no 0-based slot: no such hint
        train("esmm", models, negative, work_dir=tmp_path / "work", progress=False)
    assert "is -1" in str(refused.value) and "0-based" not in str(refused.value)


def test_ads_sharing_a_slot_are_told_apart_from_copied_impressions(models, tmp_path, caplog):
    """Several ads of a request all at position 1 were warned of as impressions twice or more, to be
    deduplicated: they are no copies, and deduplicating them loses ads; the positions are what is wrong."""
    click = clicks()
    shared = write_log(tmp_path / "shared.parquet", click, position=[1] * ROWS)
    caplog.set_level(logging.WARNING, logger="training.logs.log_quality")
    train("esmm", models, shared, work_dir=tmp_path / "work", progress=False)
    assert "deduplicate" not in caplog.text
    assert (
        f"the logs {shared} hold 666 impressions at a request_id and position another impression of the request "
        "holds, with other features or labels (different ads sharing a slot): positions must tell a request's "
        "slots apart, else the position model cannot learn" in caplog.text
    )
    caplog.clear()
    table = pq.read_table(write_log(tmp_path / "log.parquet", click))
    copied = tmp_path / "copied.parquet"
    pq.write_table(pa.concat_tables([table, table.slice(0, 30)]), copied)
    train("esmm", models, copied, work_dir=tmp_path / "work", progress=False)
    assert f"the logs {copied} hold 30 impressions twice or more" in caplog.text
    assert "unless they are different ads no feature tells apart" in caplog.text  # (a spec may leave ad_id out)
    assert "sharing a slot" not in caplog.text
