"""`ctr bench loadgen`: the generator's own cost measured against the constant-answer server, for this
checkout's generator and for another ``loadgen.py`` given by path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.support.checkout import ROOT


def test_bench_loadgen_measures_this_and_another_generator(tmp_path: Path) -> None:
    other = tmp_path / "loadgen_copy.py"
    shutil.copy(ROOT / "clients" / "bench" / "loadgen.py", other)
    for generator, out in ((None, tmp_path / "this.json"), (other, tmp_path / "other.json")):
        arguments = ["bench", "loadgen", "--rates", "200,400", "--seconds", "0.5"]
        arguments += ["--out", str(out)] + (["--generator", str(generator)] if generator else [])
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 0, result.output + repr(result.exception)
        report = json.loads(out.read_text())
        assert report["generator"] == (str(generator) if generator else "clients/bench/loadgen.py")
        assert [step["offered_rps"] for step in report["steps"]] == [200, 400]
        for step in report["steps"]:
            assert step["statuses"] == {"200": int(step["offered_rps"] / 2)}
            assert step["generator_cpu_us_per_request"] > 0 and step["generator_lag_p99_ms"] >= 0
        assert "gen µs/req" in result.output
