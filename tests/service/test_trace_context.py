"""The W3C ``traceparent`` as the spec reads it (http/trace_context.py): its valid and invalid examples
(https://www.w3.org/TR/trace-context/, section 3.2 and the versioning rules; the spec's test suite's cases)."""

from __future__ import annotations

import pytest

from service.http.request_head import read_head
from service.http.trace_context import PARENT_ID, TRACE_ID, trace_parent

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = b"00f067aa0ba902b7"
EXAMPLE = b"00-%s-%s-01" % (TRACE, PARENT)  # the spec's own example


@pytest.mark.parametrize(
    "value",
    [
        EXAMPLE,
        b"00-%s-%s-00" % (TRACE, PARENT),  # not sampled
        b"00-%s-%s-ff" % (TRACE, PARENT),  # flags unknown to version 00 are carried, not refused
        b"cc-%s-%s-01" % (TRACE, PARENT),  # a later version with nothing more
        b"cc-%s-%s-01-what-the-future-will-be-like" % (TRACE, PARENT),  # a later version's own fields
        b" \t%s \t" % EXAMPLE,  # optional whitespace around the value
    ],
    ids=["example", "unsampled", "unknown flags", "later version", "later version with more", "whitespace"],
)
def test_a_valid_traceparent_gives_its_trace_and_parent(value: bytes) -> None:
    kept = trace_parent(value)
    assert kept is not None and (kept[TRACE_ID], kept[PARENT_ID]) == (TRACE, PARENT)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"ff-%s-%s-01" % (TRACE, PARENT),  # version ff is invalid
        b"00-%s-%s-01-extra" % (TRACE, PARENT),  # version 00 has exactly four parts
        b"cc-%s-%s-01.extra" % (TRACE, PARENT),  # a later version's flags are followed by a dash or nothing
        b"00-%s-%s-01" % (b"0" * 32, PARENT),  # trace-id all zeros
        b"00-%s-%s-01" % (TRACE, b"0" * 16),  # parent-id all zeros
        b"00-%s-%s-01" % (TRACE.upper(), PARENT),  # hex is lower-case
        b"00-%s-%s-01" % (TRACE, PARENT.upper()),
        b"0A-%s-%s-01" % (TRACE, PARENT),
        b"00-%s-%s-0A" % (TRACE, PARENT),
        b"00-%s-%s-01" % (TRACE[:-1], PARENT),  # 31 digits
        b"00-%s-%s-01" % (TRACE, PARENT + b"0"),  # 17 digits
        b"00-%s-%s-1" % (TRACE, PARENT),  # one flag digit
        b"0-%s-%s-01" % (TRACE, PARENT),  # one version digit
        b"00-%sg-%s-01" % (TRACE[:-1], PARENT),  # not hex
        b"00_%s_%s_01" % (TRACE, PARENT),  # not dashes
        b"00-%s-%s-01\n" % (TRACE, PARENT),
    ],
)
def test_an_invalid_traceparent_is_none(value: bytes) -> None:
    assert trace_parent(value) is None


def test_read_head_keeps_a_valid_traceparent_and_ignores_two() -> None:
    """The spec's test suite restarts the trace of a request with two traceparent fields."""
    host = (b"host", b"t")
    assert read_head([host, (b"traceparent", EXAMPLE)], "1.1") == (None, None, None, EXAMPLE)
    assert read_head([host, (b"traceparent", EXAMPLE), (b"traceparent", EXAMPLE)], "1.1")[3] is None
    assert read_head([host, (b"traceparent", EXAMPLE[:-1])], "1.1") == (None, None, None, None)  # never refused
