"""A request whose values the service clipped to the training range and then refused counts none of them in
``ctr_feature_values_clipped_total``; accepted, the same values count, on the real service.

/v1/score encodes a request of ``ALONE_ROWS`` candidates or more where it checks it, before queueing it, and
the encoder counted its clipped values there: a request its model's queue then refused (a full queue's 503, a
deadline gone by the queue's 504, more rows than the queue holds' 413) was counted as if it had been scored.
V2 infer clips before queueing too; its full-queue 503 had no test. A full queue costs nothing to hold here: the
first request waits in its batch for company, holding half the queue, and the request that fills the batch ends
the wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.score.features import ALONE_ROWS
from tests.support.metrics import clipped_while
from tests.support.server import running_server
from tests.support.tiny_model import RANGED
from tests.support.tiny_repository import repository
from tests.support.v2_bodies import infer_body
from tests.support.wait import eventually

# a request of HALF candidates is encoded before it is queued; batches of two such fill a queue of as many rows,
# and a lone one waits up to 5 s for company (its deadline is 10 s)
HALF = ALONE_ROWS
QUEUE_ITEMS = 2 * HALF
SERVING = f"max_batch_size = {QUEUE_ITEMS}\nmax_queue_items = {QUEUE_ITEMS}\nmax_queue_delay_us = 5000000"
INSIDE = {"ad_price": 12.0, "ad_quality": 0.5}
OUTSIDE = {"ad_price": 2999.0, "ad_quality": -7.0}  # past both features' training range (RANGED)
PENDING = 'ctr_inference_pending_request_count{model="esmm",version="1"} 1'
NONE = {"ad_price": 0, "ad_quality": 0}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = repository(tmp_path_factory.mktemp("models"), SERVING, spec=RANGED)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(root, log, ctr_model="esmm", request_timeout_ms="10000", access_log="false") as (url, _):
        yield url


def score_body(candidates: int, values: dict[str, float]) -> dict:
    """A /v1/score body of ``candidates`` ads, each with ``values``."""
    return {"context": {"user_id": "u1"}, "candidates": [{"ad_id": f"a{i}", **values} for i in range(candidates)]}


def answered(url: str, path: str, body: dict, status: int, headers: dict[str, str] | None = None) -> None:
    """POST ``body`` to ``path``, answered ``status``."""
    response = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=15)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("candidates", "headers", "status"),
    [
        (QUEUE_ITEMS + 1, None, 413),  # more rows than the queue ever holds
        (HALF, {"X-Request-Timeout-Ms": "0.001"}, 504),  # the deadline gone by the time it reached the queue
    ],
    ids=["more-than-the-queue", "deadline"],
)
def test_a_request_encoded_then_refused_by_its_queue_counts_nothing(
    url: str, candidates: int, headers: dict[str, str] | None, status: int
) -> None:
    body = score_body(candidates, OUTSIDE)
    assert clipped_while(url, lambda: answered(url, "/v1/score", body, status, headers)) == NONE


def test_a_full_queue_refuses_without_counting_and_the_request_it_takes_counts(url: str) -> None:
    """A request inside the range waits in the queue for its batch to fill, holding half the queue: a /v1/score
    request and a V2 infer, each a row more than the other half, are refused 503 and count nothing; a /v1/score
    request of the other half exactly is taken, fills the batch (both are answered at once) and counts its rows."""
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, timeout=10) as http:
        waiting = pool.submit(answered, url, "/v1/score", score_body(HALF, INSIDE), 200)
        eventually(lambda: PENDING in http.get("/metrics").text, 10, "the first request waiting", every_s=0.01)
        more = HALF + 1
        v2 = infer_body([[1, 55, 80]] * more, [[1000.0, -7.0]] * more)  # standardised: past both ranges
        assert clipped_while(url, lambda: answered(url, "/v1/score", score_body(more, OUTSIDE), 503)) == NONE
        assert clipped_while(url, lambda: answered(url, "/v2/models/esmm/infer", v2, 503)) == NONE
        taken = score_body(HALF, OUTSIDE)
        assert clipped_while(url, lambda: answered(url, "/v1/score", taken, 200)) == dict.fromkeys(NONE, HALF)
        waiting.result(timeout=10)
