"""`ctr docs-check --update` writes every answer that changed, to the last digit: it compared within the check's
relative 1e-6, so an answer of an older export (2e-7 apart) was "written back" unchanged and the page kept it."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cli.docs_check import check
from tests.support.stand_in import reply, stand_in

PAGE = """# A page

```sh
curl -s localhost:8000/v1/score
# {"pctr": 0.0773036777973175}
```
"""
TODAYS_ANSWER = b'{"pctr": 0.0773036926984787}'  # 1.9e-7 relative from the page's


def answer(handler: BaseHTTPRequestHandler) -> None:
    reply(handler, 200, TODAYS_ANSWER)


def test_a_check_takes_an_answer_within_its_tolerance_and_update_writes_its_last_digits(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE, encoding="utf-8")
    with stand_in(answer) as (url, _):
        assert check([page], url, tmp_path, exact=True, write=False) == []
        assert check([page], url, tmp_path, exact=True, write=True) == []
    written = page.read_text(encoding="utf-8")
    assert "0.0773036926984787" in written and "0.0773036777973175" not in written
