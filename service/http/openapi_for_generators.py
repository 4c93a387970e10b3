"""What a client generated from the OpenAPI document (openapi-python-client, openapi-generator) needs of it that
FastAPI's document leaves out: the JSON answer first where an answer has several media types, and the width of
every integer.

Generators that take one media type per answer take the first: V2 infer's 200 listed the binary tensor data
extension's ``application/octet-stream`` first, and both generators returned the JSON answer as raw bytes, its
``InferResponse`` model generated and never used. An integer without ``format`` is a 32-bit ``Integer`` to the
Java generator, where the statistics' ``last_inference`` (milliseconds since the epoch), nanosecond totals and
counts pass 2³¹: every JSON integer this service writes is a 64-bit one at most (versions: at most 18 digits).
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def for_generators(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the JSON answer first and every integer ``int64`` (changed in place, and returned)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content")
                if content and JSON in content:
                    response["content"] = {JSON: content[JSON]} | content
    _integers_as_int64(document)
    return document


def _integers_as_int64(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            node.setdefault("format", "int64")
        for value in node.values():
            _integers_as_int64(value)
    elif isinstance(node, list):
        for item in node:
            _integers_as_int64(item)
