"""The access lines of a service's log, in either format (``CTR_LOG_FORMAT``), by their request id."""

from __future__ import annotations

import re

import orjson

ACCESS = " uvicorn.access: "  # a text line's logger, before its message
GIVEN_ID = re.compile(r"[0-9a-f]{12}-\d+")  # an id the service gave a request that carried none (REQUEST_IDS)


def given_id(request_id: str | None) -> bool:
    return request_id is not None and GIVEN_ID.fullmatch(request_id) is not None


def access_lines(text: str, log_format: str) -> dict[str, tuple[str, dict]]:
    """Each access line of a request that carried an ``X-Request-ID``: its id -> (its message, its JSON fields;
    ``{}`` for a text line). Both formats end the message with ``request_id=<id>``; a JSON line has it as a
    field too, which is checked to agree. Lines of requests the service gave an id (``given_id``) are left out."""
    lines = {}
    for line in text.splitlines():
        if log_format == "json":
            if not line.startswith("{"):
                continue
            record = orjson.loads(line)
            if record["logger"] != "uvicorn.access" or "request_id" not in record:
                continue
            message = record["message"]
            assert message.endswith(f" request_id={record['request_id']}"), record
            if not given_id(record["request_id"]):
                lines[record["request_id"]] = (message, record)
        elif ACCESS in line and " request_id=" in line:
            message = line.split(ACCESS, 1)[1]
            request_id = message.rsplit(" request_id=", 1)[1]
            if not given_id(request_id):
                lines[request_id] = (message, {})
    return lines
