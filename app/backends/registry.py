"""MEDIA_BACKEND names mapped to factories, imported only when chosen (like uvicorn's maps)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from app.backends.base import Backend
from app.settings import Settings

BackendFactory = Callable[[Settings], Backend]

BACKENDS: dict[str, str] = {
    "echo": "app.backends.echo:create_backend",
    "recorder": "app.backends.recorder:create_backend",
    "websocket": "app.backends.websocket:create_backend",
    "openai": "app.backends.realtime:create_openai_backend",
    "azure-openai": "app.backends.realtime:create_azure_backend",
}


def backend_factory(name: str) -> BackendFactory:
    """The factory for backend `name`; raises ValueError for an unknown name."""
    target = BACKENDS.get(name)
    if target is None:
        raise ValueError(f"unknown MEDIA_BACKEND {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, _, attribute = target.partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module_name), attribute)
    return factory
