"""What the typed client checks on either side of a call: feature values JSON cannot carry (NaN, infinity, text
with a lone surrogate, bytes) refused before sending, numpy scalars sent as numbers, answers that do not fit the
request refused, its own settings checked; and what it keeps of an answer (a 503's Retry-After, the model of a
similarity)."""

from __future__ import annotations

import asyncio
import copy
import pickle
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import MappingProxyType

import httpx
import numpy as np
import orjson
import pytest

from clients.client import AsyncScoringClient, ModelRef, RankedItem, ScoringClient, ServiceError
from clients.client.retry_after import retry_after
from clients.service_process import free_port
from tests.support.score_call import CANDIDATES, CONTEXT
from tests.support.stand_in import reply, stand_in


def answering(status: int, body: object, headers: dict[str, str] | None = None):
    def answer(handler: BaseHTTPRequestHandler) -> None:
        reply(handler, status, body if isinstance(body, bytes) else orjson.dumps(body), headers)

    return answer


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -np.inf, np.float32("nan")])
def test_nan_and_infinity_are_refused_naming_the_feature_before_anything_is_sent(value: float) -> None:
    """orjson writes NaN as null: the service took an optional feature as left out (its default) and said a
    required one was missing."""
    with stand_in(answering(200, {})) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(ValueError, match=r"candidates\[1\]\.ad_quality is .*JSON has no NaN or infinity"):
            client.score(CONTEXT, [CANDIDATES[0], {**CANDIDATES[1], "ad_quality": value}])
        with pytest.raises(ValueError, match=r"query\.score_floor is"):
            client.top_k({"user_id": "u1", "score_floor": value}, k=3)
        assert not received


def test_text_json_cannot_carry_and_bytes_are_refused_naming_the_feature_before_anything_is_sent() -> None:
    """orjson's own errors named no feature: "str is not valid UTF-8: surrogates not allowed" for a string cut
    inside an emoji (a lone surrogate), "Type is not JSON serializable: bytes" for bytes."""
    cut = r"context\.site is 'x\\ud83d', which JSON cannot carry: it holds U\+D83D, half of a UTF-16 surrogate pair"
    as_bytes = r"candidates\[1\]\.ad_id is bytes \(b'a7'\), which JSON cannot carry: .*decode bytes to text"
    with stand_in(answering(200, {})) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(ValueError, match=cut):
            client.score({**CONTEXT, "site": "x\ud83d"}, CANDIDATES)
        with pytest.raises(TypeError, match=as_bytes):
            client.score(CONTEXT, [CANDIDATES[0], {**CANDIDATES[1], "ad_id": b"a7"}])
        with pytest.raises(ValueError, match=r"^items\[0\]\.ad_id is 'a\\udc00'"):
            client.similarity({"user_id": "u1"}, [{"ad_id": "a\udc00"}])

        async def scored_async() -> None:
            async with AsyncScoringClient(stand_in_url) as async_client:
                await async_client.score(CONTEXT, [CANDIDATES[0], {**CANDIDATES[1], "ad_id": b"a7"}])

        with pytest.raises(TypeError, match=as_bytes):
            asyncio.run(scored_async())
        assert not received


def test_features_that_are_not_a_mapping_are_a_type_error_naming_where() -> None:
    """``similarity(q, ["a7"])`` raised "dictionary update sequence element #0 ..."; ``top_k(None)`` a bare
    TypeError from ``dict(None)``."""
    with stand_in(answering(200, {})) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(TypeError, match=r"items\[0\] must be a mapping of feature names to values, not str"):
            client.similarity({"user_id": "u1"}, ["a7"])
        with pytest.raises(TypeError, match=r"^query must be a mapping .*, not NoneType"):
            client.top_k(None, k=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"candidates\[1\] must be a mapping"):
            client.score(CONTEXT, [CANDIDATES[0], [("ad_id", "a")]])  # type: ignore[list-item]
        assert not received


@pytest.mark.parametrize("rows", [CANDIDATES[0], None, "a7", 5])
def test_candidates_or_items_that_are_not_a_list_are_a_type_error_naming_the_list(rows: object) -> None:
    """A single candidate's dict passed for the list was read as its keys ("candidates[0] must be a mapping ...,
    not str"), None gave "'NoneType' object is not iterable"."""
    with stand_in(answering(200, {})) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(TypeError, match=rf"^candidates must be a list of mappings .*, not {type(rows).__name__}$"):
            client.score(CONTEXT, rows)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=rf"^items must be a list of mappings .*, not {type(rows).__name__}$"):
            client.similarity({"user_id": "u1"}, rows)  # type: ignore[arg-type]
        assert not received


def test_versions_that_are_not_a_mapping_are_a_type_error_naming_them() -> None:
    """``versions=[1]`` said "cannot convert dictionary update sequence element #0 to a sequence"."""
    with stand_in(answering(200, {})) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(TypeError, match=r"^versions must be a mapping of model names to versions, not list$"):
            client.score(CONTEXT, CANDIDATES, versions=[1])  # type: ignore[arg-type]
        assert not received


def test_numpy_scalars_are_scored_as_the_numbers_they_hold(url: str) -> None:
    as_numpy = [
        {"ad_id": c["ad_id"], "ad_price": np.float32(c["ad_price"]), "ad_quality": np.float64(0.25)} for c in CANDIDATES
    ]
    as_python = [{"ad_id": c["ad_id"], "ad_price": float(c["ad_price"]), "ad_quality": 0.25} for c in CANDIDATES]
    with ScoringClient(url) as client:
        numpy_reply = client.score({"user_id": "u_1", "hour": np.int64(20)}, as_numpy)
        python_reply = client.score({"user_id": "u_1", "hour": 20}, as_python)
        assert numpy_reply.scores == python_reply.scores
        read_only = client.score(MappingProxyType(CONTEXT), [MappingProxyType(c) for c in CANDIDATES])
        assert len(read_only.scores) == len(CANDIDATES)  # any Mapping, as the type hints say
        (entry,) = client.models()
        assert entry.features and "ad_price" in entry.features and entry.inputs


@pytest.mark.parametrize("value", [np.float32(62.51054000854492), np.float16(0.1), np.float64(0.1)])
def test_a_numpy_float_is_sent_as_the_float64_it_holds(value: np.floating) -> None:
    """orjson writes a float32 in its shortest float32 digits (62.51054), which the service reads as another
    float64 than the value held (62.51054000854492): scores one float32 step off ctr score's for the value."""
    from clients.client.bodies import encode, score_body

    body = orjson.loads(encode(score_body({"user_id": "u_1"}, [{"ad_id": "a", "ad_price": value}])))
    sent = body["candidates"][0]["ad_price"]
    assert repr(sent) == repr(float(value)) and type(sent) is float


def test_an_answer_that_does_not_fit_the_request_is_refused() -> None:
    one_score = {"scores": [{"pctr": 0.1, "pctcvr": 0.01, "pcvr": 0.1}], "models": {}}
    with (
        stand_in(answering(200, one_score)) as (stand_in_url, _),
        ScoringClient(stand_in_url) as client,
        pytest.raises(ValueError, match="answered 1 score for 3 candidates"),
    ):
        client.score(CONTEXT, CANDIDATES)
    four_scores = one_score | {"scores": one_score["scores"] * 4}  # more than asked for is no answer to it either
    with (
        stand_in(answering(200, four_scores)) as (stand_in_url, _),
        ScoringClient(stand_in_url) as client,
        pytest.raises(ValueError, match="answered 4 scores for 3 candidates"),
    ):
        client.score(CONTEXT, CANDIDATES)
    with stand_in(answering(200, b"<html>proxy</html>")) as (stand_in_url, _), ScoringClient(stand_in_url) as client:
        with pytest.raises(ServiceError, match="the answer is not JSON") as caught:
            client.score(CONTEXT, CANDIDATES)
        assert caught.value.status == 200


def test_an_error_answer_that_is_not_the_service_s_json_is_cut_to_500_characters() -> None:
    """A proxy's HTML page became the whole ``error``: every log line and report that showed it."""
    page = b"<html>" + b"<p>bad gateway</p>" * 5000 + b"</html>"  # a proxy's page, 90 KB
    with stand_in(answering(502, page, {"content-type": "text/html"})) as (stand_in_url, _):
        with ScoringClient(stand_in_url) as client, pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert caught.value.status == 502 and caught.value.error == page[:500].decode() + "…"


def test_similarity_and_top_k_keep_the_model_that_answered() -> None:
    model = {"name": "esam", "version": 4}
    with stand_in(answering(200, {"scores": [0.5, 0.25], "model": model})) as (stand_in_url, _):
        with ScoringClient(stand_in_url) as client:
            items = [MappingProxyType({"ad_id": "a1"}), {"ad_id": "a2"}]
            similarity = client.similarity({"user_id": "u1"}, items)
        assert similarity.scores == [0.5, 0.25] and similarity.model == ModelRef("esam", 4)
    with stand_in(answering(200, {"items": [{"id": "a1", "score": 0.5}], "model": model})) as (stand_in_url, _):
        with ScoringClient(stand_in_url) as client:
            top = client.top_k({"user_id": "u1"}, k=1)
        assert top.items == [RankedItem("a1", 0.5)] and top.model == ModelRef("esam", 4)


def test_a_similarity_answer_of_another_length_is_refused_by_either_client() -> None:
    one = {"scores": [0.5], "model": {"name": "esam", "version": 4}}
    items = [{"ad_id": "a1"}, {"ad_id": "a2"}]

    async def asked_async(url: str) -> None:
        async with AsyncScoringClient(url) as client:
            await client.similarity({"user_id": "u1"}, items)

    with stand_in(answering(200, one)) as (stand_in_url, _):
        with ScoringClient(stand_in_url) as client, pytest.raises(ValueError, match="answered 1 score for 2 items"):
            client.similarity({"user_id": "u1"}, items)
        with pytest.raises(ValueError, match="answered 1 score for 2 items"):
            asyncio.run(asked_async(stand_in_url))


def test_a_model_entry_with_a_field_this_client_does_not_know_is_read() -> None:
    """A newer service's ``/v1/models`` may say more of a model: the entries are read for what this client knows."""
    entry = {"name": "esmm", "roles": ["ctr", "ctcvr"], "ready": True, "version": 3, "said_by_a_newer_service": 1}
    with stand_in(answering(200, {"models": [entry]})) as (stand_in_url, _), ScoringClient(stand_in_url) as client:
        [model] = client.models()
    assert (model.name, model.roles, model.ready, model.version) == ("esmm", ["ctr", "ctcvr"], True, 3)


def test_retry_after_is_kept_when_too_long_to_wait_and_read_as_a_date() -> None:
    overloaded = {"error": "server overloaded", "field": None}
    with stand_in(answering(503, overloaded, {"retry-after": "60"})) as (stand_in_url, received):
        with ScoringClient(stand_in_url) as client, pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert caught.value.retry_after_s == 60.0 and len(received) == 1  # longer than MAX_RETRY_WAIT_S
    past = formatdate(usegmt=True, timeval=0)
    with stand_in(answering(503, overloaded, {"retry-after": past})) as (stand_in_url, received):
        with ScoringClient(stand_in_url, max_retries=1) as client, pytest.raises(ServiceError):
            client.score(CONTEXT, CANDIDATES)
        assert list(client.waits) == [0.0] and len(received) == 2  # a date already past: try again at once


def test_a_retry_after_date_is_counted_from_the_answer_s_date_not_the_client_s_clock(monkeypatch) -> None:
    """A proxy's ``Retry-After`` date, 1 s after its ``Date``, was counted from the client's clock: 60 s ahead,
    the client retried at once; 60 s behind, it was asked 61 s, past MAX_RETRY_WAIT_S, and did not retry. Both
    read on the sender's clock (RFC 9110 §10.2.3), the wait is the second asked, whatever the client's clock,
    on either client; without a ``Date`` the client's clock is all there is."""
    real_time = time.time
    overloaded = orjson.dumps({"error": "server overloaded", "field": None})

    def proxy_answer(handler: BaseHTTPRequestHandler) -> None:
        now = real_time()  # the proxy's clock, right; the client's is skewed below
        handler.send_response_only(503)  # without the Date header send_response adds: this one is the proxy's
        for name, value in {
            "date": formatdate(now, usegmt=True),
            "retry-after": formatdate(now + 1, usegmt=True),
            "content-type": "application/json",
            "content-length": str(len(overloaded)),
        }.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(overloaded)

    async def called_async(url: str) -> AsyncScoringClient:
        async with AsyncScoringClient(url, max_retries=1) as client:
            with pytest.raises(ServiceError):
                await client.score(CONTEXT, CANDIDATES)
        return client

    for skew_s in (60.0, -60.0):
        monkeypatch.setattr(time, "time", lambda skew_s=skew_s: real_time() + skew_s)
        with stand_in(proxy_answer) as (stand_in_url, received):
            if skew_s > 0:
                with ScoringClient(stand_in_url, max_retries=1) as client, pytest.raises(ServiceError):
                    client.score(CONTEXT, CANDIDATES)
            else:
                client = asyncio.run(called_async(stand_in_url))
        assert len(received) == 2 and len(client.waits) == 1 and 0.5 <= client.waits[0] <= 2.0, skew_s
    no_date = httpx.Response(503, headers={"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert retry_after(no_date) == pytest.approx(10, abs=1)  # the client's clock, skewed or not


def test_settings_that_cannot_work_are_refused_and_errors_pickle() -> None:
    for settings, message in (
        ({"max_retries": -1}, "max_retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"timeout_s": 0}, "timeout_s"),
    ):
        with pytest.raises(ValueError, match=message):
            ScoringClient("http://127.0.0.1:9", **settings)
    # an address without its scheme raised httpx's UnsupportedProtocol at the first call, not here
    with pytest.raises(ValueError, match=r"^base_url localhost:8000 names no scheme: write http://localhost:8000$"):
        ScoringClient("localhost:8000")
    with pytest.raises(ValueError, match=r"^base_url ftp://host: the scheme ftp:// is not http:// or https://$"):
        AsyncScoringClient("ftp://host")
    with ScoringClient("HTTPS://host:1") as upper_case:  # schemes are case-insensitive
        assert upper_case.timeout_s > 0
    for settings, message in (  # Python's own "'>' not supported between instances of 'str' and 'int'" before
        ({"timeout_s": "1"}, r"^timeout_s must be a positive number of seconds, not str \('1'\)$"),
        ({"max_retries": "2"}, r"^max_retries must be an integer, not str \('2'\)$"),
        ({"max_connections": 1.5}, r"^max_connections must be an integer, not float \(1.5\)$"),
    ):
        with pytest.raises(TypeError, match=message):
            ScoringClient("http://127.0.0.1:9", **settings)
    error = ServiceError(422, "feature 'ad_price' is required but missing", "candidates[0].ad_price")
    for copied in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert (copied.status, copied.error, copied.field, str(copied)) == (422, error.error, error.field, str(error))


def test_a_call_where_nothing_answers_names_the_call_and_the_url() -> None:
    """httpx's ConnectError named no address: "[Errno 111] Connection refused", the async client's "All
    connection attempts failed"; the auction still counts it by its type."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    said = rf"^POST /v1/score: nothing answers at {nowhere} \(.+\)$"
    with ScoringClient(nowhere, max_retries=0) as client, pytest.raises(httpx.ConnectError, match=said):
        client.score(CONTEXT, CANDIDATES)

    async def call() -> None:
        async with AsyncScoringClient(nowhere, max_retries=0) as client:
            await client.score(CONTEXT, CANDIDATES)

    with pytest.raises(httpx.ConnectError, match=said):
        asyncio.run(call())


def test_health_is_false_where_nothing_answers(url: str, tmp_path: Path) -> None:
    with ScoringClient(f"http://127.0.0.1:{free_port()}") as nobody:
        assert nobody.ready() is False and nobody.live() is False
    with ScoringClient(url) as client:
        assert client.ready() and client.live()
