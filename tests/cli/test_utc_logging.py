"""Log lines say their time in UTC, with the zone, in the text format of the command line and of the
service as in the JSON lines: they said the host's local time without a zone (on a host set to Kiritimati,
a line stamped the next calendar day beside a response's GMT ``Date``)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.checkout import ROOT

FAR_FROM_UTC = {"TZ": "Pacific/Kiritimati", "PYTHONPATH": str(ROOT)}  # UTC+14: another calendar day for 10 hours


def logged_time(line: str) -> datetime:
    stamp = line.split(" ", 1)[0]
    assert stamp.endswith("+00:00") and "T" in stamp, line
    return datetime.fromisoformat(stamp)


def test_the_command_line_logs_in_utc(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "cli.main", "simulate", "--out", str(tmp_path / "w.parquet"), "--days", "1"]
    result = subprocess.run(
        [*command, "--requests-per-day", "20"], env={**os.environ, **FAR_FROM_UTC}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    line = result.stderr.splitlines()[0]
    assert " INFO training.world.simulate: day 0" in line
    assert abs(logged_time(line) - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_service_logs_in_utc_with_one_worker_and_several() -> None:
    for workers in (1, 2):
        script = (
            "import logging\n"
            "from service.server import configure_logging\n"
            f"configure_logging(logging.INFO, workers={workers})\n"
            "logging.getLogger('service.app').warning('a line')\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, **FAR_FROM_UTC}, capture_output=True, text=True
        )
        line = result.stderr.strip()
        assert line.endswith(" WARNING service.app: a line") or " WARNING [pid " in line, line
        assert abs(logged_time(line) - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_second_command_in_one_process_logs_to_its_own_stderr() -> None:
    """Two ``ctr`` commands in one process (click's ``CliRunner``, as a notebook or a script would run them): the
    second one's lines went to the first one's stderr, closed by then ("--- Logging error ---"), and its own got
    none; its ``--verbose`` was ignored too. A real process: pytest's own log handlers would keep ``ctr`` from
    installing its handler at all."""
    script = (
        "import logging\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "runner = CliRunner()\n"
        "for verbose in ([], ['-v'], []):\n"
        "    result = runner.invoke(app, [*verbose, 'sample-request', '--help'], env={'CTR_NO_SUCH_SETTING': '1'})\n"
        "    assert result.exit_code == 0, result.output\n"
        "    print(repr(result.stderr))\n"
        "    print(logging.getLogger().level)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **FAR_FROM_UTC}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    captured, levels = result.stdout.splitlines()[0::2], result.stdout.splitlines()[1::2]
    for stderr in captured:
        assert " WARNING service.settings: CTR_NO_SUCH_SETTING is not a setting" in stderr, stderr
        assert "Logging error" not in stderr, stderr
    assert levels == ["20", "10", "20"]
