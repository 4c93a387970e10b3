"""Compressed request bodies (http/content_coding.py): gzip and deflate read on every route that takes a
body, the size limit held on the decoded body, other codings 415 (the tiny model, through the app)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.service.routes.test_v2_binary import binary_body, json_body

SCORE = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_1", "ad_price": 2.0}] * 3})
INFER = "/v2/models/esmm/infer"
COMPRESS = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress}


@pytest.mark.parametrize("coding", sorted(COMPRESS))
def test_a_compressed_body_is_answered_as_the_same_body_sent_plain(client: TestClient, coding: str) -> None:
    compress = COMPRESS[coding]
    for url, body, headers in [
        ("/v1/score", SCORE, {"Content-Type": "application/json"}),
        (INFER, json_body(), {}),
        (INFER, *binary_body()),
    ]:
        plain = client.post(url, content=body, headers=headers)
        packed = client.post(url, content=compress(body), headers={**headers, "Content-Encoding": coding.upper()})
        assert plain.status_code == packed.status_code == 200, packed.text
        assert packed.content == plain.content


def test_identity_is_a_body_sent_as_it_is(client: TestClient) -> None:
    reply = client.post(
        "/v1/score", content=SCORE, headers={"Content-Type": "application/json", "Content-Encoding": "identity"}
    )
    assert reply.status_code == 200, reply.text


def test_a_coding_not_read_is_415_naming_it_and_the_codings_read(client: TestClient) -> None:
    for url in ("/v1/score", INFER, "/v1/similarity"):
        reply = client.post(url, content=SCORE, headers={"Content-Type": "application/json", "Content-Encoding": "br"})
        assert reply.status_code == 415, reply.text
        assert "'br' is not supported" in reply.json()["error"] and reply.json()["field"] == "Content-Encoding"
        assert reply.headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (SCORE, "not valid gzip data"),  # not compressed at all
        (gzip.compress(SCORE)[:-12], "it ends before its compressed data"),
        (gzip.compress(SCORE) + b"trailing", "bytes follow its compressed data"),
    ],
    ids=["plain", "truncated", "trailing"],
)
def test_a_body_that_does_not_decode_is_400_naming_the_coding(client: TestClient, body: bytes, words: str) -> None:
    reply = client.post(
        "/v1/score", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert reply.status_code == 400 and words in reply.json()["error"], reply.text


def test_a_body_that_decodes_past_the_limit_is_413_and_never_held_whole(client: TestClient, settings: Settings) -> None:
    """A 64 MB body of one byte repeated compresses to ~64 KB and less: refused once its output passes the
    limit, whatever it would have decoded to."""
    bomb = zlib.compress(b" " * (64 * 1024 * 1024), 9)
    assert len(bomb) < settings.max_body_bytes
    for url in ("/v1/score", INFER):
        reply = client.post(
            url, content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "deflate"}
        )
        assert reply.status_code == 413, reply.text
        assert (
            reply.json()["error"]
            == f"request body is larger than {settings.max_body_bytes} bytes once decoded from deflate"
        )
    compressed_too_large = b"x" * (settings.max_body_bytes + 1)
    reply = client.post(
        "/v1/score",
        content=compressed_too_large,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (
        reply.status_code == 413
        and reply.json()["error"] == f"request body is larger than {settings.max_body_bytes} bytes"
    )


def test_metrics_count_the_refusals(client: TestClient) -> None:
    def count(code: int) -> int:
        line = next(
            (x for x in client.get("/metrics").text.splitlines() if f'responses_total{{code="{code}"}}' in x), ""
        )
        return int(line.rsplit(" ", 1)[1]) if line else 0

    before = count(415)
    client.post("/v1/score", content=SCORE, headers={"Content-Encoding": "compress"})
    assert count(415) == before + 1
