"""``bypass_start = "explored"`` in the auction (training/models/explored_start.py): the retraining windows carry the
slice's propensities to the trainer of each of the debiased pipeline's models (``ctr`` and ``esmm``), the history
window (no slice) starts at the log, the pairing script (reports/auction_explored_start.py) reads each version's
start from model.json and pairs two runs, and the windows' study of esmm's starts (reports/auction_esmm_starts.py)
rebuilds the run's esmm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clients.auction.merge import read_part
from tests.support.checkout import ROOT
from tests.support.quick_auction import quick_auction


@pytest.mark.timeout(900)  # trains the debiased pipeline's two models twice; a minute or two on a loaded machine
def test_the_slice_s_rows_reach_both_models_explored_starts_and_the_reports_read_what_each_version_used(
    tmp_path: Path,
) -> None:
    from reports.auction_esmm_starts import main as esmm_starts
    from reports.auction_explored_start import main

    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "models", configs, ignore=lambda folder, names: [n for n in names if n.isdigit()])
    for model in ("ctr", "esmm"):
        config = configs / model / "config.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[model]\n", '[model]\nbypass_start = "explored"\n', 1))
    args = (
        "--pipelines",
        "debiased,oracle",
        "--requests-per-day",
        "200",
        "--explore",
        "0.5",
        "--configs",
        str(configs),
    )
    quick_auction(tmp_path, "run", *args)
    out = tmp_path / "paired.json"
    run = str(tmp_path / "run.json")
    main(["--control", run, "--variant", run, "--out", str(out), "--work-dir", str(tmp_path / "run")])
    report = json.loads(out.read_text(encoding="utf-8"))
    first, second = report["versions"]  # trained on the history days (no slice), then on history + day 0
    assert first["used"] == "log" and first["explored_rows_by_slot"] == [0, 0, 0]
    assert sum(second["explored_rows_by_slot"]) > 100  # the slice's rows of day 0 (half its 600), as logged
    days = read_part(Path(run))["pipelines"]["debiased"]["seeds"][0]["days"]
    assert sum(second["explored_rows_by_slot"]) <= days[0]["slice_impressions"]  # the training rows' share of them
    assert report["days_1_on"]["day0_identical"] == [1] and report["oracle_identical_days"] == 2  # a run with itself
    assert report["days_1_on"]["slot_ratios"]["variant_minus_control"][1]["per_seed"] == [0.0]
    assert report["days_1_on"]["pcvr_over_true"]["variant_minus_control"][0]["per_seed"] == [0.0]
    esmm_first, esmm_second = report["esmm_versions"]  # the same windows and training rows as ctr's
    assert esmm_first["used"] == "log" and esmm_first["explored_rows_by_slot"] == [0, 0, 0]
    assert esmm_second["explored_rows_by_slot"] == second["explored_rows_by_slot"]
    assert esmm_second["explored_clicks_by_slot"] == second["explored_clicks_by_slot"]
    assert esmm_second["used"] == second["used"]

    studied, joined = tmp_path / "esmm_starts.json", tmp_path / "esmm_starts_joined.json"
    esmm_starts(["--work-dir", str(tmp_path / "run"), "--train-days", "1", "--out", str(studied)])  # no run JSON yet
    esmm_starts(["--records", str(studied), "--run-json", run, "--out", str(joined)])  # which the join reads
    study = json.loads(joined.read_text(encoding="utf-8"))
    assert [w["states"]["explored"]["used"] for w in study["windows"]] == ["log", second["used"]]
    assert study["summary"]["largest_rebuild_gap"] == {"ratios": 0.0, "pcvr_over_true": pytest.approx(0, abs=1e-6)}
