"""`ctr auction` runs AuctionConfig's settings, --quick's, or the flags given over either."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.auction import QUICK
from cli.main import app


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {}),
        (["--quick"], QUICK),
        (["--quick", "--seeds", "2"], {**QUICK, "seeds": 2}),
        (["--days", "7"], {"days": 7}),
    ],
)
def test_the_days_traffic_seeds_and_training_days_run(tmp_path, monkeypatch, args, expected):
    import clients.auction.plot
    import clients.auction.report
    import clients.auction.run

    ran = []
    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: ran.append(config) or {"pipelines": {}})
    monkeypatch.setattr(clients.auction.plot, "plot_report", lambda report, path: None)
    monkeypatch.setattr(clients.auction.report, "table", lambda report: "")
    result = CliRunner().invoke(app, ["auction", *args, "--out", str(tmp_path / "auction.json")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    defaults = clients.auction.run.AuctionConfig()
    for key in ("days", "requests_per_day", "seeds", "train_days"):
        assert getattr(ran[0], key) == expected.get(key, getattr(defaults, key)), key
