"""The request bodies the routes read themselves (not through FastAPI's parameters), in the OpenAPI document:
each one a schema of ``components/schemas`` that the operation names by ``$ref``, its nested models beside it.

Inlined into each operation, the one model read by two routes (V2 infer, with and without a version) became
two sets of classes in a generated client (openapi-python-client), and one route's body passed to the other's
call was silently sent as no body at all; and a ``#/$defs/...`` reference left in an inlined schema resolves
nowhere in an OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

REFERENCE = "#/components/schemas/{model}"
# the models of the bodies documented so far, by name (the routes' modules call request_body as they load)
_DOCUMENTED: dict[str, type[BaseModel]] = {}


def request_body(
    model: type[BaseModel], example: dict | None = None, *, required: bool = True, headers: tuple[dict, ...] = ()
) -> dict:
    """``openapi_extra`` declaring a JSON request body of ``model`` that the route reads itself, and the header
    parameters it reads itself (``TIMEOUT_PARAMETER``); ``with_request_bodies`` adds the model's schema."""
    _DOCUMENTED[model.__name__] = model
    content: dict[str, Any] = {"schema": {"$ref": REFERENCE.format(model=model.__name__)}}
    if example is not None:
        content["example"] = example
    extra: dict[str, Any] = {"requestBody": {"required": required, "content": {"application/json": content}}}
    return extra | {"parameters": list(headers)} if headers else extra


def with_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the schema of every body ``request_body`` declared that an operation of it names, and
    of the models nested in it, in its components (changed in place, and returned). A name FastAPI gave another
    schema is an error: the document would say one of the two wrong."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    named = json.dumps(document.get("paths", {}))  # a route not mounted (the admin routes, off) names none
    for name, model in sorted(_DOCUMENTED.items()):
        if f'"{REFERENCE.format(model=name)}"' not in named:
            continue
        schema = model.model_json_schema(ref_template=REFERENCE)
        for defined, definition in {**schema.pop("$defs", {}), name: schema}.items():
            if schemas.setdefault(defined, definition) != definition:
                raise ValueError(f"two schemas named {defined!r} in the OpenAPI document: rename one of the models")
    return document
