"""Route dependencies as ``Annotated`` aliases, so a route's signature says what it needs."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import Depends, Request

from service.errors import InputError
from service.model_manager import ModelManager
from service.registry import ServingModels
from service.settings import Settings

JSON_TYPES = ("application/json",)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_models(request: Request) -> ServingModels:
    return request.app.state.models


def check_media_type(content_type: str) -> None:
    """415 unless a Content-Type header value names JSON."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise InputError(415, f"Content-Type must be application/json, not {shown}", "Content-Type")


async def json_body(request: Request) -> bytes:
    """The raw body of a JSON request; 415 for any other content type (size is capped by middleware)."""
    check_media_type(request.headers.get("content-type", ""))
    return await request.body()


TIMEOUT_HEADER = "x-request-timeout-ms"


async def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


async def request_deadline(request: Request) -> float:
    """When the request must be answered (event-loop clock): the setting, or less if the client asks."""
    return deadline_for(request.app.state.settings.request_timeout_ms, request.headers.get(TIMEOUT_HEADER))


def deadline_for(timeout_ms: float, asked: str | None) -> float:
    """The deadline on the event loop's clock: ``timeout_ms`` from now, or the header's lower value."""
    if asked is not None:
        try:
            value = float(asked)
        except ValueError:
            value = math.nan
        if not (value > 0 and math.isfinite(value)):
            raise InputError(
                400, "X-Request-Timeout-Ms must be a positive number of milliseconds", "X-Request-Timeout-Ms"
            )
        timeout_ms = min(timeout_ms, value)
    return asyncio.get_running_loop().time() + timeout_ms / 1000.0


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ServingModels, Depends(get_models)]
JsonBody = Annotated[bytes, Depends(json_body)]
DeadlineDep = Annotated[float, Depends(request_deadline)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
