"""The Azure Voice Live backend (`MEDIA_BACKEND=voice-live`): the Realtime conversation, with
barge-in, tools, transcripts and reconnects, on Microsoft's voice-agent service.

session_config.py  session.update from the AZURE_VOICELIVE_* settings (the SDK's models)
dialect.py         Voice Live's event names and content types, read and written as GA ones
connection.py      the SDK's sockets, URLs and credentials (API key, Entra ID)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx

from app.agent.tools import ToolConfig
from app.backends.base import BackendError
from app.backends.realtime import RealtimeBackend, RealtimeConfig
from app.backends.realtime import open_tools as _open_tools
from app.backends.realtime.connection import (
    BearerCredential,
    EntraTokenProvider,
    default_azure_credential,
)
from app.backends.realtime.errors import RealtimeFatal
from app.backends.voicelive.connection import VOICELIVE_SCOPE, voicelive_service
from app.settings import Settings

__all__ = ["conversation_config", "create_voicelive_backend", "open_voicelive_factory"]

# Renewed well before the service's session cap, between turns when it can be.
RENEW_AFTER_S = 25 * 60.0
RENEW_DEADLINE_S = 28 * 60.0


def create_voicelive_backend(
    settings: Settings,
    *,
    token_provider: EntraTokenProvider | None = None,
    tools: ToolConfig | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> RealtimeBackend:
    """MEDIA_BACKEND=voice-live: an API key, or Entra ID without one (the app's shared
    `token_provider`, opened by `open_voicelive_factory`)."""
    try:
        service = voicelive_service(settings, token_provider=token_provider)
    except RealtimeFatal as exc:
        raise BackendError(str(exc), fatal=True) from exc
    return RealtimeBackend(
        service,
        conversation_config(settings),
        name="voice-live",
        renew_after_s=RENEW_AFTER_S,
        renew_deadline_s=RENEW_DEADLINE_S,
        tools=tools if tools is not None else ToolConfig.built_in(settings),
        http_client=http_client,
    )


def conversation_config(settings: Settings) -> RealtimeConfig:
    """The REALTIME_* settings the conversation shares with the Realtime backends; with
    AZURE_VOICELIVE_TURN_DETECTION=none, ACS transcription drives the turns, and a Foundry
    agent keeps its own instructions (REALTIME_INSTRUCTIONS[_FILE] are not used)."""
    config = RealtimeConfig.from_settings(settings)
    if settings.azure_voicelive_turn_detection == "none":
        config = config.with_acs_turns()
    if settings.azure_voicelive_agent_id is not None:
        config = config.with_service_persona()
    return config


async def open_voicelive_factory(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    credential_factory: Callable[[], BearerCredential] = default_azure_credential,
    tools: ToolConfig | None = None,
) -> Callable[[Settings], RealtimeBackend]:
    """The per-call factory for MEDIA_BACKEND=voice-live, opened once for the app: with Entra
    ID every call shares one credential and its cached token (closed with the app)."""
    tools, client = await _open_tools(settings, stack, tools)
    factory = functools.partial(create_voicelive_backend, tools=tools, http_client=client)
    key = settings.azure_voicelive_api_key
    if key is not None and key.get_secret_value():
        return factory
    credential = credential_factory()
    stack.push_async_callback(credential.close)
    provider = EntraTokenProvider(credential, VOICELIVE_SCOPE)
    return functools.partial(factory, token_provider=provider)
