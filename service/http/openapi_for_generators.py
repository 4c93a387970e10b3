"""What a client generated from the OpenAPI document (openapi-python-client, openapi-generator) needs of it that
FastAPI's document leaves out: the JSON answer first where an answer has several media types, the width of
every integer, a number written as one, and no boolean held to one value.

Generators that take one media type per answer take the first: V2 infer's 200 listed the binary tensor data
extension's ``application/octet-stream`` first, and both generators returned the JSON answer as raw bytes, its
``InferResponse`` model generated and never used. An integer without ``format`` is a 32-bit ``Integer`` to the
Java generator, where the statistics' ``last_inference`` (milliseconds since the epoch), nanosecond totals and
counts pass 2³¹: every JSON integer this service writes is a 64-bit one at most (versions: at most 18 digits).

pydantic writes ``int | float`` as ``anyOf: [integer, number]``, the same set of values as ``number`` (an integer
is a number): in V2 infer's tensor ``data``, nested in the anyOf of flat or nested rows, openapi-generator's
python client (7.26.0) made the inner one a wrapper class that its own ``from_dict`` refused every plain value
for (``InferRequest.from_dict`` of the example body raised), so no JSON infer request could be built. And it read
``const: true`` (``Literal[True]``, the repository unload's ``unloaded``) as the string enum ``'true'``, and
raised on every successful unload's answer (the model unloaded all the same); ``enum: [true]`` reads the same.
Such a boolean is written a plain one, the value it always has in its description.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


NUMERIC = ("integer", "number")


def for_generators(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the JSON answer first, every ``integer | number`` a number, every integer ``int64`` and
    no boolean held to one value (changed in place, and returned)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content")
                if content and JSON in content:
                    response["content"] = {JSON: content[JSON]} | content
    _written_plainly(document)
    _integers_as_int64(document)
    return document


def _written_plainly(node: Any) -> None:
    """An ``anyOf`` of bare integer and number schemas, ``number``; a boolean's ``const``, its description."""
    if isinstance(node, dict):
        members = node.get("anyOf")
        if isinstance(members, list) and len(members) > 1 and all(_bare_numeric(m) for m in members):
            del node["anyOf"]
            node["type"] = "number"
        if node.get("type") == "boolean" and "const" in node:
            value = "true" if node.pop("const") else "false"
            node["description"] = " ".join(filter(None, (node.get("description"), f"Always {value}.")))
        for value in node.values():
            _written_plainly(value)
    elif isinstance(node, list):
        for item in node:
            _written_plainly(item)


def _bare_numeric(schema: Any) -> bool:
    """An integer or number schema that says nothing else (a bound or a format would be lost in ``number``)."""
    return isinstance(schema, dict) and schema.get("type") in NUMERIC and set(schema) == {"type"}


def _integers_as_int64(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            node.setdefault("format", "int64")
        for value in node.values():
            _integers_as_int64(value)
    elif isinstance(node, list):
        for item in node:
            _integers_as_int64(item)
