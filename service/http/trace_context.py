"""A request's W3C Trace Context ``traceparent`` header, read so that its access line can name the caller's
trace (``trace_id=<32 hex> span_id=<16 hex>``, log_format.py): an ad server that traces its bids (OpenTelemetry
and most tracers send the header) had no way from a trace to this service's line for that bid, nor back, as a
log store's derived fields (Loki's, linking to Tempo) allow once the line carries the trace's id.

The header is read as the spec's section 3.2 and its versioning rules have it
(https://www.w3.org/TR/trace-context/): ``<version>-<trace-id>-<parent-id>-<trace-flags>``, each lower-case hex
(2, 32, 16 and 2 digits); version ``ff`` is invalid, as is a trace-id or a parent-id of zeros only. Version
``00`` is exactly those four parts; a later version may carry more after them, behind a dash, and its first four
parts are read as version 00's. Two ``traceparent`` fields name no parent (the spec's test suite restarts the
trace). A header that breaks any of this is ignored, never refused: it only serves tracing, and a tracer that
cannot parse one starts a trace of its own. Nothing is echoed on the response: the spec defines no response
header (``traceresponse`` is a draft of its level 2).
"""

from __future__ import annotations

import re

TRACEPARENT = b"traceparent"
_FORM = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?", re.DOTALL)
_ZERO_TRACE_ID = b"0" * 32
_ZERO_PARENT_ID = b"0" * 16
TRACE_ID = slice(3, 35)  # of a valid header's bytes: its trace-id
PARENT_ID = slice(36, 52)  # and its parent-id (the caller's span)


def trace_parent(value: bytes) -> bytes | None:
    """The ``traceparent`` header's value (without the blanks around it) if it is valid, else None; its
    ``TRACE_ID`` and ``PARENT_ID`` slices give the two ids."""
    value = value.strip(b" \t")  # optional whitespace around a field's value is not part of it (RFC 9110 5.5)
    form = _FORM.fullmatch(value)
    if form is None:
        return None
    version, trace_id, parent_id, more = form.groups()
    if version == b"ff" or (version == b"00" and more is not None):
        return None
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None
    return value
