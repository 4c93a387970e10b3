"""`ctr bench` checks what it is given before any server starts."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.reports import write_report
from tests.support.retrieval import add_tiny_esam


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve", "--cases", "service_100,bogus"], "['bogus'] is not among raw_ort, http_only"),
        (["harden", "--cases", "overlaod"], "['overlaod'] is not among overload, pauses, drain"),
        # the load generator's bound: 5,000 was cut to 2,048 without a word
        (["harden", "--warm-connections", "5000"], "5,000 is not 0 to 2,048: the load generator opens 2,048"),
        (["harden", "--warm-connections", "-1"], "-1 is not 0 to 2,048"),
        (["harden", "--warm-connections", "2048", "--cases", "overlaod"], "['overlaod'] is not among"),  # 2,048 taken
        (["peers", "--peers", "service,nosuch"], "['nosuch'] is not among service, ray_serve"),
        (["ab", "--service-root", "EMPTY"], "holds no service/ package"),
        (["serve", "--step-s", "0"], "greater than or equal to 0.1"),
        (["batch-sizes", "--rounds", "0"], "greater than or equal to 1"),
    ],
)
def test_a_name_or_number_the_bench_cannot_take_is_refused(tmp_path, args, expected):
    args = [str(tmp_path) if arg == "EMPTY" else arg for arg in args]
    result = CliRunner().invoke(app, ["bench", *args, "-r", str(tmp_path)], terminal_width=400)
    assert result.exit_code == 2 and expected in " ".join(result.output.replace("│", " ").split()), result.output


def test_a_model_without_an_exported_version_is_named_at_once(tmp_path):
    (tmp_path / "esmm").mkdir()
    (tmp_path / "esmm" / "config.toml").write_text('kind = "esmm"\n')
    result = CliRunner().invoke(app, ["bench", "serve", "--cases", "service_100", "-r", str(tmp_path)])
    assert result.exit_code != 0 and "model 'esmm' has no exported version in" in str(result.exception)


@pytest.mark.parametrize("bench", ["hotpath", "serve", "batch-sizes"])
def test_a_retrieval_model_is_refused_at_once(tmp_path, bench):
    """``--model esam``: bench hotpath stopped on a KeyError traceback ('raw_path'), the others sent /v1/score
    bodies a retrieval service answers 404."""
    add_tiny_esam(tmp_path)
    result = CliRunner().invoke(app, ["bench", bench, "--model", "esam", "-r", str(tmp_path)], terminal_width=400)
    assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output
    assert str(result.exception).startswith("--model esam is a retrieval model (it answers /v1/similarity)")


def test_a_report_holds_no_nan(tmp_path):
    write_report(tmp_path / "r.json", {"ratio": math.nan, "rows": [1.5, math.inf], "ok": 2.0})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and json.loads(text) == {"ratio": None, "rows": [1.5, None], "ok": 2.0}
