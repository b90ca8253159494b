"""MEDIA_BACKEND names mapped to factories, imported only when chosen (like uvicorn's maps)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from app.agent.tools import ToolConfig
from app.backends.base import Backend
from app.settings import Settings

BackendFactory = Callable[[Settings], Backend]

BACKENDS: dict[str, str] = {
    "echo": "app.backends.echo:create_backend",
    "recorder": "app.backends.recorder:create_backend",
    "websocket": "app.backends.websocket:create_backend",
    "openai": "app.backends.realtime:create_openai_backend",
    "azure-openai": "app.backends.realtime:create_azure_backend",
    "voice-live": "app.backends.voicelive:create_voicelive_backend",
    "pipecat": "app.backends.pipecat:create_pipecat_backend",
}

# Backends with resources shared by all calls (opened with the app, closed at shutdown): an
# async `(settings, stack) -> BackendFactory` in place of the plain factory.
APP_SCOPED: dict[str, str] = {
    # The Realtime backends load the agent tools (AGENT_TOOLS_FILE) once for the app.
    "openai": "app.backends.realtime:open_openai_factory",
    "azure-openai": "app.backends.realtime:open_azure_factory",
    "voice-live": "app.backends.voicelive:open_voicelive_factory",
    # The bot is loaded once for the app (a bad PIPECAT_BOT stops it), with the agent tools.
    "pipecat": "app.backends.pipecat:open_pipecat_factory",
}


def backend_factory(name: str) -> BackendFactory:
    """The factory for backend `name`; raises ValueError for an unknown name."""
    target = BACKENDS.get(name)
    if target is None:
        raise ValueError(f"unknown MEDIA_BACKEND {name!r}; choose one of {sorted(BACKENDS)}")
    factory: BackendFactory = _load(target)
    return factory


async def open_backend_factory(
    name: str, settings: Settings, stack: AsyncExitStack, *, tools: ToolConfig | None = None
) -> BackendFactory:
    """The app's per-call factory for backend `name`, its shared resources opened in `stack`."""
    target = APP_SCOPED.get(name)
    if target is None:
        return backend_factory(name)
    opener: Callable[..., Awaitable[Any]] = _load(target)
    factory: BackendFactory = await opener(settings, stack, tools=tools)
    return factory


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
