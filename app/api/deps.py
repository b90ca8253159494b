"""Route dependencies: the app's services, reached through the request's app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from app.calls.store import CallStore
from app.services import Services
from app.settings import Settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_ws_services(websocket: WebSocket) -> Services:
    services: Services = websocket.app.state.services
    return services


def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


def get_store(services: Annotated[Services, Depends(get_services)]) -> CallStore:
    return services.store


ServicesDep = Annotated[Services, Depends(get_services)]
WsServicesDep = Annotated[Services, Depends(get_ws_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[CallStore, Depends(get_store)]
