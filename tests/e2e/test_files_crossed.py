"""`reports/files_crossed.py` on the tiny trained ESMM: one traced request, the files of service/ it ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_trace_lists_the_files_a_score_request_runs(world_repository: Path) -> None:
    script = ROOT / "reports" / "files_crossed.py"
    result = subprocess.run(
        [sys.executable, str(script), "--repository", str(world_repository)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "POST /v1/score, 1 candidate(s): 200"
    files = [line.split(":")[0].strip() for line in lines[1:-1]]
    # the request's own path, end to end: its handler, its checks, its batcher, its model
    for expected in ("service/score/endpoint.py", "service/score/features.py", "service/batching/batcher.py"):
        assert expected in files
    assert "service/models/scoring_model.py" in files
    assert lines[-1] == f"{len(files)} files of service/"
