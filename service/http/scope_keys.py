"""The keys this service adds to a request's ASGI scope, read wherever the request goes: its deadline, its
count in the metrics, its access line (log_format.py)."""

from __future__ import annotations

RECEIVED = "ctr.received"  # when the request's first bytes reached the host (loop clock): http/protocol.py
# set when the protocol answered a request the app still held (its body's time-out, a 408): the app's own
# answer after it reaches nobody and is not counted (metrics.StatusCounter); it counted twice
ANSWERED_BY_PROTOCOL = "ctr.answered_by_protocol"
SCOPE_REQUEST_ID = "ctr.request_id"  # the request's X-Request-ID, or the one it was given (its access line's)
# the message of the error the request was answered with (its access line's): log_format.note_error
ERROR_MESSAGE = "ctr.error"
# what else ties the request to its caller's own logs, each set only when the request carries it (its access
# line's, log_format.correlation): the X-Request-ID it sent that breaks the rule (http/request_head.py), its
# valid W3C traceparent (http/trace_context.py), and a V2 infer body's "id" (service/v2/routes.py)
REFUSED_REQUEST_ID = "ctr.refused_request_id"
SCOPE_TRACEPARENT = "ctr.traceparent"
INFER_ID = "ctr.infer_id"
