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
from openai import AsyncOpenAI

from app.agent.tools import ToolConfig
from app.backends.base import BackendError
from app.backends.realtime.backend import RealtimeBackend, ReconnectPolicy
from app.backends.realtime.connection import (
    BearerCredential,
    EntraTokenProvider,
    RealtimeConnector,
    azure_connector,
    default_azure_credential,
    openai_connector,
    shared_client,
)
from app.backends.realtime.errors import RealtimeFatal
from app.backends.realtime.session_config import MODEL_SAMPLE_RATE, RealtimeConfig
from app.backends.realtime.socket import warm_event_parsing
from app.media.resample import preload as preload_resampling
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
    client: AsyncOpenAI | None = None,
) -> RealtimeBackend:
    """MEDIA_BACKEND=openai: OPENAI_API_KEY, OPENAI_REALTIME_MODEL, OPENAI_BASE_URL; `tools`
    default to the built-in ones (AGENT_TOOLS_FILE's come with `open_openai_factory`), `client`
    is the app's SDK client (else the call builds its own)."""
    try:
        connector = openai_connector(settings, client=client)
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
    client: AsyncOpenAI | None = None,
) -> RealtimeBackend:
    """MEDIA_BACKEND=azure-openai: the v1 endpoint with an API key, or Entra ID without one
    (the app's shared `token_provider`, else a credential of the call's own)."""
    try:
        connector = azure_connector(settings, token_provider=token_provider, client=client)
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
    """The per-call factory for MEDIA_BACKEND=openai, with the app's agent tools and one SDK
    client for every call (closed with the app)."""
    tools, http_client = await open_tools(settings, stack, tools)
    await asyncio.to_thread(_preload, settings)
    factory = functools.partial(create_openai_backend, tools=tools, http_client=http_client)
    try:
        connector = openai_connector(settings)
    except RealtimeFatal:
        return factory  # misconfigured: every call reports it, as before
    return functools.partial(factory, client=await _shared_client(connector, stack))


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
    tools, http_client = await open_tools(settings, stack, tools)
    await asyncio.to_thread(_preload, settings)
    factory = functools.partial(create_azure_backend, tools=tools, http_client=http_client)
    key = settings.azure_openai_api_key
    provider = None
    if key is None or not key.get_secret_value():
        credential = credential_factory()
        stack.push_async_callback(credential.close)
        provider = EntraTokenProvider(credential)
        factory = functools.partial(factory, token_provider=provider)
    try:
        connector = azure_connector(settings, token_provider=provider)
    except RealtimeFatal:
        return factory  # misconfigured: every call reports it, as before
    return functools.partial(factory, client=await _shared_client(connector, stack))


def _preload(settings: Settings) -> None:
    """What every call would otherwise load on the event loop the first time (blocking all
    calls' media for about 150 ms): numpy and the resampler when the calls' rate is not the
    model's, and the SDK's server-event models (about 13 MiB in all, in the idle service
    instead)."""
    if settings.sample_rate != MODEL_SAMPLE_RATE:
        preload_resampling()
    warm_event_parsing()


async def _shared_client(connector: RealtimeConnector, stack: AsyncExitStack) -> AsyncOpenAI:
    """One SDK client for the app, closed with it: a call then builds none of its own (its
    memory, and the thread hop that made 100 calls arriving together wait for each other)."""
    client = await shared_client(connector)
    stack.push_async_callback(client.close)
    return client


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
