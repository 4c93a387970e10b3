"""`ctr docs-check --url` calls the service where the examples call ``localhost:8000``, however the URL is
written: a trailing slash sent every example to ``//v1/...`` (404), an ``https://`` URL was not taken apart."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cli.docs_check import addressed, check
from tests.support.docs_page import page
from tests.support.stand_in import reply, stand_in


def test_a_url_with_a_trailing_slash_reaches_the_documented_paths(tmp_path: Path) -> None:
    paths: list[str] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        target = handler.requestline.split()[1]  # as sent: http.server's ``path`` folds a leading "//"
        paths.append(target)
        reply(handler, 200 if target == "/v2/health/ready" else 404, b"{}")

    with stand_in(answer) as (url, _):
        assert check([page(tmp_path)], f"{url}/", tmp_path, exact=False, write=False) == []
    assert paths == ["/v2/health/ready"]


def test_the_scheme_host_port_and_path_of_the_url_replace_the_documented_address() -> None:
    script = "curl -s localhost:8000/v1/score && curl http://127.0.0.1:8000/metrics"
    assert addressed(script, "https://[::1]:18210/under/") == (
        "curl -s https://[::1]:18210/under/v1/score && curl https://[::1]:18210/under/metrics"
    )
    assert addressed(script, "[::1]:18210") == "curl -s http://[::1]:18210/v1/score && curl http://[::1]:18210/metrics"
