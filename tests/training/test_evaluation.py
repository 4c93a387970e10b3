"""`ctr evaluate NAME` on the world's held-out day records every setting that determines that day."""

from __future__ import annotations

import training.evaluation
from training.evaluation import evaluate_on_world

CONFIG = """kind = "esmm"
[data]
heldout_requests = 30
heldout_seed = {seed}
[world]
n_users = 100
n_ads = 40
n_advertisers = 30
"""


def test_the_report_records_the_held_out_day_s_settings(tmp_path, monkeypatch):
    """Changing [data] heldout_seed changed every metric with nothing in the report showing it."""
    monkeypatch.setattr(training.evaluation, "run_exported", lambda root, name, table, version: (1, {}))
    (tmp_path / "esmm").mkdir()
    reports = []
    for seed in (7, 8):
        (tmp_path / "esmm" / "config.toml").write_text(CONFIG.format(seed=seed))
        reports.append(evaluate_on_world(tmp_path, "esmm")["heldout"])
    assert reports[0]["seed"] == 7 and reports[1]["seed"] == 8
    assert reports[0]["policy"] == "uniform" and reports[0]["requests"] == 30
    world = reports[0]["world"]
    assert world["n_users"] == 100 and world["seed"] == 0 and world["n_slots"] > 0  # the defaults filled in
