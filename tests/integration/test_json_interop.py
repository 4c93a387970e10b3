"""JSON as ad servers in other languages write it, on the real server (``ctr serve``'s protocol, /v1/score on
its direct route): a .NET body's UTF-8 byte order mark, OkHttp's ``charset=utf-8``, Jackson's ``1.0`` for a
version; a ``charset=utf-16`` body is 415 naming it, Node's lone surrogate escape a 400 that says what it is,
and a raw uint64 hash among V2 INT64 data a 400 naming where it sits (each was a 400 or 422 that said none of
it)."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from tests.support.server import running_server
from tests.support.tiny_repository import repository
from tests.support.v2_bodies import infer_body

SCORE = {"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_3", "ad_price": 2.5}]}


def test_json_from_other_languages_on_the_real_server(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with running_server(repository(tmp_path / "models"), log, ctr_model="esmm") as (url, _), httpx.Client() as http:
        plain = http.post(f"{url}/v1/score", content=orjson.dumps(SCORE), headers={"content-type": "application/json"})
        assert plain.status_code == 200, plain.text
        pinned = orjson.dumps({**SCORE, "versions": {"esmm": 1.0}})
        dotnet = http.post(
            f"{url}/v1/score",
            content=b"\xef\xbb\xbf" + pinned,
            headers={"content-type": "application/json;charset=UTF-8"},
        )
        assert dotnet.status_code == 200 and dotnet.json() == plain.json(), dotnet.text

        utf16 = http.post(
            f"{url}/v1/score",
            content=orjson.dumps(SCORE).decode().encode("utf-16"),
            headers={"content-type": "application/json; charset=utf-16"},
        )
        assert utf16.status_code == 415, utf16.text
        assert utf16.json()["error"] == "Content-Type charset must be utf-8 (JSON is UTF-8), not 'utf-16'"

        cut = b'{"context": {"user_id": "u\\ud83d"}, "candidates": [{"ad_id": "ad_3", "ad_price": 2.5}]}'
        surrogate = http.post(f"{url}/v1/score", content=cut, headers={"content-type": "application/json"})
        assert surrogate.status_code == 400 and "\\ud83d is a lone UTF-16 surrogate" in surrogate.json()["error"]

        hashed = infer_body([[14695981039346656037, 40001, 50]], [[0.0, 0.0]])
        infer = http.post(f"{url}/v2/models/esmm/infer", content=orjson.dumps(hashed))
        assert infer.status_code == 400, infer.text
        assert infer.json()["error"].endswith("data[0][0] is 14695981039346656037, an integer out of int64 range")
