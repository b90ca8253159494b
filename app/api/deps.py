"""Route dependencies: the app's services, reached through the request's app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from app.services import Services


def get_services(request: Request) -> Services:
    """The services the lifespan built for this request's app."""
    services: Services = request.app.state.services
    return services


def get_ws_services(websocket: WebSocket) -> Services:
    """The services the lifespan built for this socket's app."""
    services: Services = websocket.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
