"""An access line names what else ties a request to its caller's logs (log_format.correlation): a refused
X-Request-ID, a W3C trace, a V2 infer body's id, before its ``request_id``, in both formats; and a line of a
request that carried none of them is as it was."""

from __future__ import annotations

import logging

import orjson

from service.http.scope_keys import INFER_ID, REFUSED_REQUEST_ID, SCOPE_REQUEST_ID, SCOPE_TRACEPARENT
from service.log_format import ACCESS_LOGGER, JsonFormatter, access_line_fields

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ARGUMENTS = ("127.0.0.1:5000", "POST", "/v1/score", "1.1", 200)


def logged(scope: dict) -> logging.LogRecord:
    """The access line of a request with this scope, through the access logger's filter."""
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d', ARGUMENTS, None)
    record.scope = scope
    assert access_line_fields(record)
    return record


def test_a_line_says_the_callers_ids_before_its_request_id() -> None:
    scope = {
        SCOPE_REQUEST_ID: b"0123456789ab-7",
        REFUSED_REQUEST_ID: b'RID-1 status=999 "quoted"\t',
        SCOPE_TRACEPARENT: TRACEPARENT,
        INFER_ID: "body-id-7",
    }
    record = logged(scope)
    assert record.getMessage() == (
        '127.0.0.1:5000 - "POST /v1/score HTTP/1.1" 200 refused_request_id="RID-1 status=999 \\"quoted\\"\\t"'
        ' trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 infer_id="body-id-7"'
        " request_id=0123456789ab-7"
    )
    fields = orjson.loads(JsonFormatter().format(record))
    assert {name: fields[name] for name in ("refused_request_id", "trace_id", "span_id", "infer_id", "status")} == {
        "refused_request_id": 'RID-1 status=999 "quoted"\t',
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "infer_id": "body-id-7",
        "status": 200,
    }


def test_a_callers_id_is_cut_to_64_characters() -> None:
    """A 20 KB X-Request-ID wrote a 20 KB line; a body's id is any string."""
    record = logged({SCOPE_REQUEST_ID: b"given-1", REFUSED_REQUEST_ID: b"r" * 20_000, INFER_ID: "i" * 65})
    assert record.refused_request_id == "r" * 61 + "..." and record.infer_id == "i" * 61 + "..."
    assert f' refused_request_id="{"r" * 61}..." infer_id="{"i" * 61}..." request_id=given-1' in record.getMessage()
    assert logged({INFER_ID: "i" * 64}).infer_id == "i" * 64


def test_a_line_without_them_is_as_it_was() -> None:
    record = logged({SCOPE_REQUEST_ID: b"auction-17"})
    assert record.getMessage() == '127.0.0.1:5000 - "POST /v1/score HTTP/1.1" 200 request_id=auction-17'
    assert not {"refused_request_id", "trace_id", "span_id", "infer_id"} & set(vars(record))


def test_a_callers_id_is_read_as_utf_8() -> None:
    """Latin-1 logged an id ``日本`` as ``æ—¥æœ¬``; a byte that is not UTF-8 shows as ``\\xNN``, and the cut
    counts characters, not bytes."""
    assert logged({REFUSED_REQUEST_ID: "日本".encode()}).refused_request_id == "日本"
    assert logged({REFUSED_REQUEST_ID: b"caf\xe9 \xff"}).refused_request_id == "caf\\xe9 \\xff"
    assert logged({REFUSED_REQUEST_ID: "日本".encode() * 40}).refused_request_id == "日本" * 30 + "日..."
