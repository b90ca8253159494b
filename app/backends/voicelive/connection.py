"""Opening Voice Live sockets with the official `azure-ai-voicelive` SDK (async).

`wss://<resource>.services.ai.azure.com/voice-live/realtime?api-version=...&model=<model>`
(or `agent-name` and `agent-project-name` for a Foundry agent) with `api-key: <key>`, or
`Authorization: Bearer <token>` from Entra ID when no key is set. The SDK builds the URL and
the headers; credentials are asked for on every connect, so a reconnect gets a fresh token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp
import orjson
import pybase64
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam
from openai.types.realtime.realtime_server_event import RealtimeServerEvent

from app.backends.realtime.connection import BearerCredential, EntraTokenProvider
from app.backends.realtime.errors import RealtimeFatal, RealtimeUnavailable, SocketClosed
from app.backends.realtime.socket import ClientEvent
from app.backends.voicelive.dialect import client_event, server_event
from app.backends.voicelive.session_config import VoiceLiveSession, session_update
from app.settings import Settings

log = logging.getLogger(__name__)

VOICELIVE_SCOPE = "https://ai.azure.com/.default"  # the SDK's default scope
OPEN_TIMEOUT_S = 10.0
FATAL_HANDSHAKE_STATUSES = frozenset({400, 401, 403, 404})


class SharedTokenCredential:
    """An async credential for the SDK that hands out the app's cached Entra token, so calls
    neither wait for a token fetch nor each hold a credential; closing it closes nothing."""

    def __init__(self, provider: EntraTokenProvider) -> None:
        self._provider = provider

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await self._provider.token()

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> SharedTokenCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        return None


class VoiceLiveSocket:
    """A Voice Live session, read and written as the GA Realtime protocol."""

    def __init__(self, connection: VoiceLiveConnection) -> None:
        self._connection = connection

    async def send(self, event: ClientEvent) -> None:
        try:
            await self._connection.send(client_event(event))
        except VoiceLiveConnectionError as exc:
            raise SocketClosed(str(exc)) from exc

    async def append(self, pcm: bytes) -> None:
        try:
            await self._connection.input_audio_buffer.append(
                audio=pybase64.b64encode_as_string(pcm)
            )
        except VoiceLiveConnectionError as exc:
            raise SocketClosed(str(exc)) from exc

    async def recv(self) -> RealtimeServerEvent:
        while True:
            try:
                raw = await self._connection.recv_bytes()
            except VoiceLiveConnectionError as exc:
                raise SocketClosed(str(exc)) from exc
            if not raw:
                continue  # a frame type the SDK does not pass on (it logged it)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                log.warning("Voice Live sent a message that is not JSON (%d bytes)", len(raw))
                continue
            if not isinstance(data, dict):
                continue
            event = server_event(data)
            if event is not None:
                return event
            if data.get("type") == "warning":
                log.warning("Voice Live warns: %s", str(data.get("warning") or data)[:500])

    async def close(self) -> None:
        await self._connection.close()


class VoiceLiveService:
    """Opens Voice Live sockets for one call (a `RealtimeService`), with an API key or the
    app's Entra ID credential."""

    name = "voice-live"

    def __init__(
        self,
        endpoint: str,
        config: VoiceLiveSession,
        *,
        api_key: str | None = None,
        model: str | None = None,
        agent: tuple[str, str] | None = None,  # (agent name, project name)
        api_version: str | None = None,
        credential: BearerCredential | None = None,
        open_timeout_s: float = OPEN_TIMEOUT_S,
    ) -> None:
        if api_key is None and credential is None:
            raise ValueError("Voice Live without an API key needs an Entra ID credential")
        if model is None and agent is None:
            raise ValueError("Voice Live needs a model or an agent")
        self.endpoint = endpoint
        self.config = config
        self._api_key = api_key
        self._model = model
        self._agent = agent
        self._api_version = api_version
        self._credential = credential
        self._open_timeout_s = open_timeout_s

    @property
    def model(self) -> str:
        if self._agent is not None:
            return f"agent {self._agent[0]} ({self._agent[1]})"
        assert self._model is not None
        return self._model

    @property
    def sample_rate(self) -> None:
        return None  # the call's own: Voice Live takes 16 and 24 kHz both ways

    def session_update(
        self, instructions: str, tools: Sequence[RealtimeFunctionToolParam], sample_rate: int
    ) -> ClientEvent:
        return session_update(self.config, instructions, tools, sample_rate)

    async def connect(self) -> VoiceLiveSocket:
        """A new socket; raises RealtimeFatal or RealtimeUnavailable."""
        options: dict[str, Any] = {}
        if self._api_version is not None:
            options["api_version"] = self._api_version
        if self._agent is not None:
            options["agent_name"], options["project_name"] = self._agent
        else:
            options["model"] = self._model
        credential: Any = (
            AzureKeyCredential(self._api_key) if self._api_key is not None else self._credential
        )
        try:
            async with asyncio.timeout(self._open_timeout_s):
                manager = connect(credential=credential, endpoint=self.endpoint, **options)
                connection = await manager.__aenter__()
        except VoiceLiveConnectionError as exc:
            raise _connect_failure(exc) from exc
        except ClientAuthenticationError as exc:
            raise RealtimeFatal(f"no Entra ID token for Voice Live: {exc.message}") from exc
        except (OSError, TimeoutError, ServiceRequestError) as exc:
            raise RealtimeUnavailable(
                f"Voice Live is unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        return VoiceLiveSocket(connection)

    async def close(self) -> None:
        return None  # sockets close themselves; the credential is the app's


def _connect_failure(exc: VoiceLiveConnectionError) -> RealtimeFatal | RealtimeUnavailable:
    cause = exc.__cause__
    if isinstance(cause, aiohttp.WSServerHandshakeError):
        message = f"Voice Live refused the socket: HTTP {cause.status}"
        if cause.status in FATAL_HANDSHAKE_STATUSES:
            return RealtimeFatal(message)
        return RealtimeUnavailable(message)
    if isinstance(cause, aiohttp.InvalidURL | ValueError):
        return RealtimeFatal(f"the Voice Live endpoint is not valid: {cause}")
    return RealtimeUnavailable(f"Voice Live is unreachable: {cause or exc}")


def voicelive_service(
    settings: Settings, *, token_provider: EntraTokenProvider | None = None
) -> VoiceLiveService:
    """MEDIA_BACKEND=voice-live from settings: AZURE_VOICELIVE_API_KEY, or else Entra ID through
    the app's shared `token_provider`."""
    if settings.azure_voicelive_endpoint is None:
        raise RealtimeFatal("MEDIA_BACKEND=voice-live needs AZURE_VOICELIVE_ENDPOINT")
    key = settings.azure_voicelive_api_key
    api_key = key.get_secret_value() if key is not None and key.get_secret_value() else None
    credential: BearerCredential | None = None
    if api_key is None:
        if token_provider is None:
            raise RealtimeFatal("Voice Live without AZURE_VOICELIVE_API_KEY needs Entra ID")
        credential = SharedTokenCredential(token_provider)
    agent = None
    if settings.azure_voicelive_agent_id and settings.azure_voicelive_agent_project:
        agent = (settings.azure_voicelive_agent_id, settings.azure_voicelive_agent_project)
    return VoiceLiveService(
        str(settings.azure_voicelive_endpoint).rstrip("/"),
        VoiceLiveSession.from_settings(settings),
        api_key=api_key,
        model=settings.azure_voicelive_model,
        agent=agent,
        api_version=settings.azure_voicelive_api_version or None,
        credential=credential,
    )
