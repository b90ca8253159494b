"""The OpenAI / Azure OpenAI Realtime backends (`MEDIA_BACKEND=openai` or `azure-openai`).

connection.py      the SDK client, URLs and credentials (API key, Entra ID)
session_config.py  session.update and the greeting, from settings
uplink.py          caller audio batched into appends
player.py          model audio played to the call from its own task
playback.py        per-item audio accounting for barge-in (truncate, cancel, late deltas)
history.py         the transcript replayed into a new session
tool_calls.py      the model's function calls run beside the conversation (app.agent's tools)
backend.py         the Backend: the socket's life, server events, faults
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx

from app.agent.tools import ToolConfig
from app.backends.base import BackendError
from app.backends.realtime.backend import RealtimeBackend, ReconnectPolicy
from app.backends.realtime.connection import (
    BearerCredential,
    EntraTokenProvider,
    azure_connector,
    default_azure_credential,
    openai_connector,
)
from app.backends.realtime.errors import RealtimeFatal
from app.backends.realtime.session_config import RealtimeConfig
from app.settings import Settings

__all__ = [
    "RealtimeBackend",
    "RealtimeConfig",
    "ReconnectPolicy",
    "create_azure_backend",
    "create_openai_backend",
    "open_azure_factory",
    "open_openai_factory",
    "open_tools",
]


def create_openai_backend(
    settings: Settings,
    *,
    tools: ToolConfig | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> RealtimeBackend:
    """MEDIA_BACKEND=openai: OPENAI_API_KEY, OPENAI_REALTIME_MODEL, OPENAI_BASE_URL; `tools`
    default to the built-in ones (AGENT_TOOLS_FILE's come with `open_openai_factory`)."""
    try:
        connector = openai_connector(settings)
    except RealtimeFatal as exc:
        raise BackendError(str(exc), fatal=True) from exc
    return RealtimeBackend(
        connector,
        RealtimeConfig.from_settings(settings),
        name="openai",
        tools=tools if tools is not None else ToolConfig.built_in(settings),
        http_client=http_client,
    )


def create_azure_backend(
    settings: Settings,
    *,
    token_provider: EntraTokenProvider | None = None,
    tools: ToolConfig | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> RealtimeBackend:
    """MEDIA_BACKEND=azure-openai: the v1 endpoint with an API key, or Entra ID without one
    (the app's shared `token_provider`, else a credential of the call's own)."""
    try:
        connector = azure_connector(settings, token_provider=token_provider)
    except RealtimeFatal as exc:
        raise BackendError(str(exc), fatal=True) from exc
    return RealtimeBackend(
        connector,
        RealtimeConfig.from_settings(settings),
        name="azure-openai",
        tools=tools if tools is not None else ToolConfig.built_in(settings),
        http_client=http_client,
    )


async def open_openai_factory(
    settings: Settings, stack: AsyncExitStack, *, tools: ToolConfig | None = None
) -> Callable[[Settings], RealtimeBackend]:
    """The per-call factory for MEDIA_BACKEND=openai, with the app's agent tools."""
    tools, client = await open_tools(settings, stack, tools)
    return functools.partial(create_openai_backend, tools=tools, http_client=client)


async def open_azure_factory(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    credential_factory: Callable[[], BearerCredential] = default_azure_credential,
    tools: ToolConfig | None = None,
) -> Callable[[Settings], RealtimeBackend]:
    """The per-call factory for MEDIA_BACKEND=azure-openai, opened once for the app.

    With Entra ID (no AZURE_OPENAI_API_KEY), every call shares one credential and its cached
    token: a call does not wait for a token fetch, and a busy instance does not hammer the
    managed-identity endpoint (which throttles). The credential closes with the app.
    """
    tools, client = await open_tools(settings, stack, tools)
    factory = functools.partial(create_azure_backend, tools=tools, http_client=client)
    key = settings.azure_openai_api_key
    if key is not None and key.get_secret_value():
        return factory
    credential = credential_factory()
    stack.push_async_callback(credential.close)
    return functools.partial(factory, token_provider=EntraTokenProvider(credential))


async def open_tools(
    settings: Settings, stack: AsyncExitStack, tools: ToolConfig | None
) -> tuple[ToolConfig, httpx.AsyncClient | None]:
    """The app's agent tools (loaded by create_app; built-ins only when none are given), and
    one HTTP client for every call's custom tools."""
    if tools is None:
        tools = ToolConfig.built_in(settings)
    client = None
    if tools.has_http_tools:
        # Built off the loop (it loads trust stores); redirects off: URLs come from the file.
        client = await asyncio.to_thread(httpx.AsyncClient, follow_redirects=False)
        stack.push_async_callback(client.aclose)
    return tools, client
