"""A report's ``command`` is the command that ran: every option given, none left out (cli/reports.py)."""

from __future__ import annotations

import json
import shlex

from typer.testing import CliRunner

from cli.main import app


def recorded(tmp_path, *args: str, env: dict | None = None) -> str:
    """The ``command`` in the report of ``ctr ARGS --out OUT``, its measurement stubbed out."""
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, [*args, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(out.read_text())["command"]


def test_bench_peers_records_the_peers_the_slo_the_repository_and_the_model(tmp_path, monkeypatch):
    """It recorded only --quick and --server-cpus: a run of one peer at another SLO read as the default run."""
    import clients.bench.peers.runner as runner

    monkeypatch.setattr("cli.bench.require_exported", lambda repository, model: None)
    monkeypatch.setattr("cli.bench.request_bodies", lambda *args, **kwargs: [])
    monkeypatch.setattr(runner, "missing_packages", lambda peers: [])
    monkeypatch.setattr(runner, "run_peers", lambda *args: {"peers": args[4]})
    monkeypatch.setattr(runner, "table", lambda report: "")
    args = ["bench", "peers", "--peers", "service", "--slo-ms", "50", "-r", str(tmp_path / "my models"), "--quick"]
    command = recorded(tmp_path, *args, "--model", "ctr")
    words = shlex.split(command)
    assert words[:3] == ["ctr", "bench", "peers"]
    for option, value in (("--peers", "service"), ("--slo-ms", "50.0"), ("--repository", str(tmp_path / "my models"))):
        assert words[words.index(option) + 1] == value, command
    assert words[words.index("--model") + 1] == "ctr" and "--quick" in words
    assert "--server-cpus" not in words  # left at its default


def test_bench_hotpath_records_the_repository_and_the_model(tmp_path, monkeypatch):
    import clients.bench.hotpath

    monkeypatch.setattr("cli.bench.require_exported", lambda repository, model: None)
    monkeypatch.setattr("cli.bench.request_bodies", lambda *args, **kwargs: [])
    case = {"cpu_us_per_request": 1.0, "event_loop_cpu_us_per_request": 1.0, "wall_us_per_request": 1.0}
    monkeypatch.setattr(clients.bench.hotpath, "hot_path", lambda *args: {**case, "statuses": {}})
    command = recorded(tmp_path, "bench", "hotpath", "-r", "elsewhere", "--model", "ctr")
    assert command == f"ctr bench hotpath --out {tmp_path / 'report.json'} --model ctr --repository elsewhere"


def test_ctr_auction_records_its_settings_and_never_the_admin_token(tmp_path, monkeypatch):
    """It recorded only --quick and --url; an admin token given by the environment is a secret."""
    import clients.auction.plot
    import clients.auction.report
    import clients.auction.run

    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: {"pipelines": {}})
    monkeypatch.setattr(clients.auction.plot, "plot_report", lambda report, path: None)
    monkeypatch.setattr(clients.auction.report, "table", lambda report: "")
    args = ["auction", "--quick", "--days", "3", "--pipelines", "naive", "--no-progress", "--url", "http://h:1"]
    args += ["--repository", str(tmp_path)]
    command = recorded(tmp_path, *args, env={"CTR_ADMIN_TOKEN": "s3cret"})
    assert "s3cret" not in command
    words = shlex.split(command)
    assert words[:2] == ["ctr", "auction"] and words[words.index("--days") + 1] == "3"
    assert words[words.index("--pipelines") + 1] == "naive" and words[words.index("--admin-token") + 1] == "***"
    assert {"--quick", "--no-progress"} <= set(words) and words[words.index("--url") + 1] == "http://h:1"


def test_a_password_in_a_url_is_never_recorded(tmp_path, monkeypatch):
    """httpx sends ``user:password@`` as Basic auth; the report's ``command`` kept the password, and reports
    are committed."""
    import clients.auction.plot
    import clients.auction.report
    import clients.auction.run
    from common.shown_url import shown_url

    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: {"pipelines": {}})
    monkeypatch.setattr(clients.auction.plot, "plot_report", lambda report, path: None)
    monkeypatch.setattr(clients.auction.report, "table", lambda report: "")
    url = "http://ops:hunter2@h:1/base"
    args = ["auction", "--quick", "--pipelines", "naive", "--url", url, "--repository", str(tmp_path)]
    command = recorded(tmp_path, *args, env={"CTR_ADMIN_TOKEN": "s3cret"})
    assert "hunter2" not in command and "ops" not in command
    assert shlex.split(command)[shlex.split(command).index("--url") + 1] == "http://***@h:1/base"
    assert shown_url("https://h:8000/a@b") == "https://h:8000/a@b"  # an @ past the authority is no password
    assert shown_url("http://t@h") == "http://***@h" and shown_url("h:1") == "h:1"


def test_experiment_reports_record_the_command_and_the_code(tmp_path, monkeypatch):
    """No experiment report had a ``command`` nor the versions of what ran it."""
    import training.experiments.moore2018
    import training.experiments.moore2018_report

    monkeypatch.setattr(training.experiments.moore2018, "run", lambda config: {"loops": []})
    monkeypatch.setattr(training.experiments.moore2018_report, "plot", lambda report, path: None)
    monkeypatch.setattr(training.experiments.moore2018_report, "table", lambda report: [])
    command = recorded(tmp_path, "experiment", "moore2018", "--quick", "--r", "0.5")
    assert command == f"ctr experiment moore2018 --out {tmp_path / 'report.json'} --r 0.5 --quick"
    provenance = json.loads((tmp_path / "report.json").read_text())["provenance"]
    assert {"debiased-ctr", "python", "numpy", "torch"} <= set(provenance["packages"])
