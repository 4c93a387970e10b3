"""Route dependencies as ``Annotated`` aliases, so a route's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.http.body import TIMEOUT_HEADER, check_media_type, deadline_for
from service.http.disconnect import Watcher, watcher
from service.http.scope_keys import RECEIVED
from service.models.manager import ModelManager
from service.models.snapshot import ServingModels
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_models(request: Request) -> ServingModels:
    return request.app.state.models


async def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


async def json_body(request: Request) -> bytes:
    """The raw body of a JSON request; 415 for any other content type (size is capped by middleware)."""
    check_media_type(request.headers.get("content-type", ""))
    return await request.body()


async def request_deadline(request: Request) -> float:
    """When the request must be answered (event-loop clock): the setting, or less if the client asks."""
    return deadline_for(
        request.app.state.settings.request_timeout_ms, request.headers.get(TIMEOUT_HEADER), request.scope.get(RECEIVED)
    )


async def disconnect_watcher(request: Request) -> Watcher:
    """How the request learns that its client left (http/disconnect.py)."""
    return watcher(request.scope, request.receive)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ServingModels, Depends(get_models)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
JsonBody = Annotated[bytes, Depends(json_body)]
DeadlineDep = Annotated[float, Depends(request_deadline)]
DisconnectDep = Annotated[Watcher, Depends(disconnect_watcher)]
