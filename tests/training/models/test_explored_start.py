"""``bypass_start = "explored"`` (training/models/explored_start.py, bypass_start.py): the bypass starts at the fall of
the explored rows' click rates, at the log's level; with too few explored clicks at a slot, at the log start, said in
a warning and recorded in model.json's ``training.bypass_start``."""

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from common.repository import read_manifest
from tests.support.model_batches import SPEC, batch
from tests.support.own_logs import SPEC_TOML
from training.logs.explored_rows import EXPLORED
from training.models.adversarial_ctr import AdversarialCTR
from training.models.esmm_debiased import DebiasedESMM
from training.models.explored_start import MIN_SLOT_CLICKS
from training.models.position_bypass import position_summary
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.models.settings.esmm_debiased import DebiasedESMMConfig
from training.position_ctr import listed_slots, position_ctr, position_ctr_per_row

EXPLORED_CLICKS = (60, 36, 18)  # of 600 explored rows a slot: a fall of 1, 0.6, 0.3
RANKED_CLICKS = (600, 240, 120)  # of 3,000 ranked rows a slot: 1, 0.4, 0.2 (better ads higher)


def window(explored_clicks=EXPLORED_CLICKS, explored_rows=600, ranked_rows=3000, seed=0) -> dict[str, torch.Tensor]:
    """Three slots whose ranked rows and explored rows fall differently, in a shuffled order."""
    position, click, explored = [], [], []
    for slot in (1, 2, 3):
        for rows, clicks, flag in ((ranked_rows, RANKED_CLICKS, False), (explored_rows, explored_clicks, True)):
            position += [slot] * rows
            click += [1] * clicks[slot - 1] + [0] * (rows - clicks[slot - 1])
            explored += [flag] * rows
    order = np.random.default_rng(seed).permutation(len(position))
    data = batch(len(position), seed)
    data["position"] = torch.from_numpy(np.array(position)[order])
    data["click"] = torch.from_numpy(np.array(click)[order])
    data["conversion"] = data["click"] * torch.from_numpy(np.arange(len(position)) % 2)
    data["b"] = torch.from_numpy(position_ctr_per_row(data["position"].numpy(), data["click"].numpy()))
    data[EXPLORED] = torch.from_numpy(np.array(explored)[order])
    return data


def fall(rates) -> list[float]:
    return [rate / rates[0] for rate in rates]


def started_ratios(model: torch.nn.Module, data: dict[str, torch.Tensor]) -> list[float]:
    """The published ratios of the model as its start leaves it, without a feature effect (each slot's own)."""
    with torch.no_grad():
        (model.w_y if isinstance(model, AdversarialCTR) else model.ctr_tower.mlp[-1]).weight.zero_()
    return position_summary(model, data)["ctr_ratios"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_explored_start_publishes_the_explored_rows_fall_where_the_log_start_publishes_the_window_s(seed):
    data = window(seed=seed)
    logged = listed_slots(position_ctr(data["position"].numpy(), data["click"].numpy()))
    for build in (
        lambda start: AdversarialCTR(SPEC, AdversarialCTRConfig(bypass_start=start)),
        lambda start: DebiasedESMM(SPEC, DebiasedESMMConfig(embedding_dim=4, hidden=[8], bypass_start=start)),
    ):
        ratios = {}
        for start in ("explored", "log"):
            torch.manual_seed(seed)
            model = build(start)
            model.fix_constants(data)
            ratios[start] = started_ratios(model, data)
        assert ratios["explored"] == pytest.approx(fall(EXPLORED_CLICKS), abs=0.01)  # 1, 0.6, 0.3
        assert ratios["log"] == pytest.approx(fall(logged), abs=0.01)  # 1, 0.420, 0.210: the mixed fall
        assert model.bypass_started is None  # the log start asked for: nothing to record


def test_the_explored_start_keeps_the_log_s_click_rate_and_records_what_it_read():
    """Its slots' rates are the explored rows' scaled to the window's click rate (the explored rows' ads are drawn at
    random: their level is not the ranked ads'); model.json's training.bypass_start records the counts."""
    data = window()
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass_start="explored"))
    model.fix_constants(data)
    slots = listed_slots(position_ctr(data["position"].numpy(), data["click"].numpy()))
    with torch.no_grad():
        started = torch.sigmoid(model.bypass_logit(torch.tensor(slots)) + model.w_y.bias).numpy()
    assert float(np.mean(started)) == pytest.approx(float(data["click"].double().mean()), abs=1e-3)  # slots alike
    assert model.bypass_started == {
        "asked": "explored",
        "used": "explored",
        "explored_rows": 1800,
        "explored_rows_by_slot": [600, 600, 600],
        "explored_clicks_by_slot": list(EXPLORED_CLICKS),
    }


def parameters(model: AdversarialCTR) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if name.startswith(("bypass", "w_"))}


def test_without_explored_rows_it_starts_at_the_log_and_says_so(caplog):
    """A window without a propensity column (the history day's world logs), or whose rows are none of them
    explored: the log start's very weights, a warning, and the record saying why."""
    data = window()
    torch.manual_seed(0)
    log = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass_start="log"))
    log.fix_constants(data)
    unflagged = {key: value for key, value in data.items() if key != EXPLORED}
    none = data | {EXPLORED: torch.zeros_like(data[EXPLORED])}
    for rows, why in ((unflagged, "no numeric propensity column"), (none, "none of the 10800 training rows")):
        torch.manual_seed(0)
        model = AdversarialCTR(SPEC, AdversarialCTRConfig(bypass_start="explored"))
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            model.fix_constants(rows)
        for name, value in parameters(log).items():
            assert torch.equal(parameters(model)[name], value), name
        assert why in caplog.text and "starts from every training row's slot click rates instead" in caplog.text
        assert model.bypass_started["used"] == "log" and why in model.bypass_started["why"]


def test_a_slot_with_fewer_than_five_explored_clicks_sends_the_whole_bypass_to_the_log_start(caplog):
    short = window(explored_clicks=(60, 36, MIN_SLOT_CLICKS - 1))
    torch.manual_seed(0)
    model = DebiasedESMM(SPEC, DebiasedESMMConfig(embedding_dim=4, hidden=[8], bypass_start="explored"))
    with caplog.at_level(logging.WARNING):
        model.fix_constants(short)
    assert "slot(s) [3] hold fewer than 5 clicks or rows without one among the 1800 explored" in caplog.text
    assert model.bypass_started["used"] == "log" and model.bypass_started["explored_clicks_by_slot"] == [60, 36, 4]
    logged = listed_slots(position_ctr(short["position"].numpy(), short["click"].numpy()))
    assert started_ratios(model, short) == pytest.approx(fall(logged), abs=0.01)
    enough = window(explored_clicks=(60, 36, MIN_SLOT_CLICKS))
    torch.manual_seed(0)
    model = DebiasedESMM(SPEC, DebiasedESMMConfig(embedding_dim=4, hidden=[8], bypass_start="explored"))
    model.fix_constants(enough)
    assert model.bypass_started["used"] == "explored"
    assert started_ratios(model, enough) == pytest.approx(fall((60, 36, MIN_SLOT_CLICKS)), abs=0.01)
    few_misses = window(explored_clicks=(8, 5, 5), explored_rows=12)  # slot 1: 8 clicks, 4 rows without one
    torch.manual_seed(0)
    model = DebiasedESMM(SPEC, DebiasedESMMConfig(embedding_dim=4, hidden=[8], bypass_start="explored"))
    model.fix_constants(few_misses)
    assert model.bypass_started["used"] == "log" and "slot(s) [1]" in model.bypass_started["why"]


def own_log(path, explored_share: float) -> None:
    """3,000 requests of three slots in the own-logs spec's features; ``explored_share`` of them logged with a
    propensity of 0.1 and clicked as 0.3, 0.18, 0.09 down the page, the rest with 1 and 0.4, 0.16, 0.08."""
    rng = np.random.default_rng(5)
    requests = 3000
    explored = np.repeat(rng.random(requests) < explored_share, 3)
    position = np.tile([1, 2, 3], requests)
    rate = np.where(explored, np.array([0.3, 0.18, 0.09])[position - 1], np.array([0.4, 0.16, 0.08])[position - 1])
    click = (rng.random(rate.size) < rate).astype(np.int64)
    table = pa.table({
        "request_id": np.repeat([f"r{i}" for i in range(requests)], 3),
        "site": [f"s{i % 4}" for i in range(rate.size)],
        "creative": rng.integers(0, 10, rate.size),
        "bid": rng.uniform(0.1, 2, rate.size),
        "position": position,
        "click": click,
        "conversion": click * (rng.random(rate.size) < 0.3),
        "propensity": np.where(explored, 0.1, 1.0),
    })  # fmt: skip
    pq.write_table(table, path)


CONFIG = """
kind = "adversarial_ctr"
[model]
optimizer = "adam"
bias_epochs = 0
bypass_start = "explored"
[training]
epochs = 1
batch_size = 256
learning_rate = 0.01
validation_fraction = 0.2
"""


@pytest.mark.parametrize(("share", "used"), [(0.3, "explored"), (0.0, "log")])
def test_ctr_train_records_the_start_used_in_model_json(tmp_path, share, used):
    (tmp_path / "models" / "ctr").mkdir(parents=True)
    (tmp_path / "models" / "ctr" / "config.toml").write_text(CONFIG)
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    own_log(tmp_path / "logs.parquet", share)
    common = ["--repository", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work")]
    spec = ["--spec", str(tmp_path / "spec.toml")]
    runner = CliRunner()
    result = runner.invoke(
        app, ["train", "ctr", "--logs", str(tmp_path / "logs.parquet"), *spec, "--no-progress", *common]
    )
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["export", "ctr", *common]).exit_code == 0
    started = read_manifest(tmp_path / "models", "ctr", 1).training["bypass_start"]
    assert started["asked"] == "explored" and started["used"] == used
    assert (started["explored_rows"] > 2000) == (share > 0)  # of the 7,200 training rows (the first 80 %)
    assert ("why" in started) == (share == 0)
