"""`reports/files_crossed.py` on the tiny trained ESMM: a request traced on a kept-alive connection and one on a
new connection, the files of service/ each ran."""

from __future__ import annotations

from pathlib import Path

from tests.support.report_script import run_report_script


def test_the_trace_lists_the_files_a_score_request_runs(world_repository: Path) -> None:
    result = run_report_script("files_crossed.py", "--repository", str(world_repository), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("POST /v1/score")]
    assert [lines[i] for i in headers] == [
        "POST /v1/score, 1 candidate(s), on a kept-alive connection: 200",
        "POST /v1/score, 1 candidate(s), on a new connection: 200",
    ]
    traces = {}
    for start, end in zip(headers, [*headers[1:], len(lines)], strict=True):
        label = lines[start].split(", on ")[1].split(":")[0]
        files = [line.split(":")[0].strip() for line in lines[start + 1 : end - 1]]
        assert lines[end - 1] == f"{len(files)} files of service/ on {label}"
        traces[label] = files
    for files in traces.values():
        # the request's own path, end to end: its handler, its checks, its batcher, its model
        for expected in ("service/score/endpoint.py", "service/score/features.py", "service/batching/batcher.py"):
            assert expected in files
        assert "service/models/scoring_model.py" in files
    # a new connection is registered for its read deadlines when it opens: a kept-alive one was already
    assert "service/http/read_deadlines.py" in traces["a new connection"]
