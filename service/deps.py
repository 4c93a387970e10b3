"""Route dependencies as ``Annotated`` aliases, so a route's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import InputError
from service.registry import ServingModels
from service.settings import Settings

JSON_TYPES = ("application/json",)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_models(request: Request) -> ServingModels:
    return request.app.state.models


async def json_body(request: Request) -> bytes:
    """The raw body of a JSON request; 415 for any other content type (size is capped by middleware)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise InputError(415, f"Content-Type must be application/json, not {shown}", "Content-Type")
    return await request.body()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ServingModels, Depends(get_models)]
JsonBody = Annotated[bytes, Depends(json_body)]
