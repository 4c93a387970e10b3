"""An OpenAPI document's schema with its ``#/components/schemas/...`` references resolved, as a generated client
reads it (the service's models have no recursion)."""

from __future__ import annotations

from typing import Any

COMPONENTS = "#/components/schemas/"


def resolved(document: dict, node: Any) -> Any:
    """``node`` with every reference into the document's components replaced by the schema it names."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(COMPONENTS):
            return resolved(document, document["components"]["schemas"][reference.removeprefix(COMPONENTS)])
        return {key: resolved(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(document, item) for item in node]
    return node
