"""Opening Realtime sockets with the official `openai` client, for OpenAI and Azure OpenAI.

OpenAI: `{OPENAI_BASE_URL}/realtime?model=<model>` with `Authorization: Bearer <key>`.
Azure OpenAI (v1, GA): `wss://<resource>.openai.azure.com/openai/v1/realtime?model=<deployment>`
with `api-key: <key>`, or `Authorization: Bearer <token>` from Entra ID when no key is set.
Credentials are asked for on every connect, so a reconnect or a renewal gets a fresh token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from openai import AsyncOpenAI, Omit, OpenAIError
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from app.backends.realtime.errors import RealtimeFatal, RealtimeUnavailable
from app.backends.realtime.session_config import MODEL_SAMPLE_RATE, RealtimeConfig, session_update
from app.backends.realtime.socket import ClientEvent, OpenAISocket
from app.settings import Settings

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
OPEN_TIMEOUT_S = 10.0
TOKEN_REFRESH_MARGIN_S = 300.0
FATAL_HANDSHAKE_STATUSES = frozenset({400, 401, 403, 404})


class BearerCredential(Protocol):
    """What the connector needs of an azure-identity async credential."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...

    async def close(self) -> None: ...


class EntraTokenProvider:
    """An async API-key provider for the SDK: a cached Entra token, renewed before it expires."""

    def __init__(
        self,
        credential: BearerCredential,
        scope: str = AZURE_SCOPE,
        *,
        margin_s: float = TOKEN_REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credential = credential
        self.scope = scope
        self._margin_s = margin_s
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        return (await self.token()).token

    async def token(self) -> AccessToken:
        """The cached token, fetched anew once it is within the margin of expiring."""
        async with self._lock:
            token = self._token
            if token is None or token.expires_on - self._margin_s <= self._clock():
                token = self._token = await self.credential.get_token(self.scope)
            return token


@dataclass(frozen=True, slots=True)
class RealtimeEndpoint:
    """Where a Realtime socket goes and how it authenticates."""

    model: str
    base_url: str  # the SDK's http(s) base; sockets derive from it unless websocket_base_url
    api_key: str | None  # None: a bearer token from the connector's Entra credential
    websocket_base_url: str | None = None
    headers: Mapping[str, str | Omit] = field(default_factory=dict)


class RealtimeConnector:
    """Opens OpenAI / Azure OpenAI Realtime sockets for one call (a `RealtimeService`).

    With the app's `client` (`shared_client`, built once and closed with the app) a call costs
    no client of its own: about 1.2 MiB and a thread hop per call less. Without one it builds
    and owns a client, and its credential unless it was given the app's `token_provider`.
    """

    def __init__(
        self,
        endpoint: RealtimeEndpoint,
        config: RealtimeConfig,
        *,
        name: str = "openai",
        credential_factory: Callable[[], BearerCredential] | None = None,
        token_provider: EntraTokenProvider | None = None,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        client: AsyncOpenAI | None = None,
    ) -> None:
        if (
            endpoint.api_key is None
            and credential_factory is None
            and token_provider is None
            and client is None
        ):
            raise ValueError("an endpoint without an API key needs a credential")
        self.endpoint = endpoint
        self.name = name
        self._config = config
        self._credential_factory = credential_factory
        self._token_provider = token_provider
        self._credential: BearerCredential | None = None
        self._open_timeout_s = open_timeout_s
        self._shared = client  # the app's: never closed here
        self._client: AsyncOpenAI | None = None

    @property
    def model(self) -> str:
        return self.endpoint.model

    @property
    def token_provider(self) -> EntraTokenProvider | None:
        return self._token_provider

    @property
    def sample_rate(self) -> int:
        return MODEL_SAMPLE_RATE

    def session_update(
        self, instructions: str, tools: Sequence[RealtimeFunctionToolParam], sample_rate: int
    ) -> ClientEvent:
        """The GA `session.update` (the models take 24 kHz PCM16 only)."""
        return session_update(self._config, instructions, tools)

    async def connect(self) -> OpenAISocket:
        """A new Realtime socket; raises RealtimeFatal or RealtimeUnavailable."""
        try:
            client = await self._ensure_client()
            async with asyncio.timeout(self._open_timeout_s):
                connection = await client.realtime.connect(
                    model=self.endpoint.model, extra_headers=self.endpoint.headers
                ).enter()
                return OpenAISocket(connection)
        except InvalidStatus as exc:
            status = exc.response.status_code
            message = f"the Realtime service refused the socket: HTTP {status}"
            if status in FATAL_HANDSHAKE_STATUSES:
                raise RealtimeFatal(message) from exc
            raise RealtimeUnavailable(message) from exc
        except InvalidURI as exc:
            raise RealtimeFatal(f"the Realtime URL is not valid: {exc}") from exc
        except ClientAuthenticationError as exc:
            raise RealtimeFatal(f"no Entra ID token for Azure OpenAI: {exc.message}") from exc
        except OpenAIError as exc:
            raise RealtimeFatal(f"the OpenAI client refused to connect: {exc}") from exc
        except (OSError, TimeoutError, InvalidHandshake, ServiceRequestError) as exc:
            raise RealtimeUnavailable(
                f"the Realtime service is unreachable: {type(exc).__name__}: {exc}"
            ) from exc

    async def close(self) -> None:
        """Close the SDK client and the credential (idempotent)."""
        client, self._client = self._client, None
        credential, self._credential = self._credential, None
        try:
            if client is not None:
                await client.close()
        finally:
            if credential is not None:
                await credential.close()

    async def _ensure_client(self) -> AsyncOpenAI:
        if self._shared is not None:
            return self._shared
        if self._client is None:
            # Building the client loads TLS trust stores (and azure-identity imports): tens of
            # milliseconds that must not block the event loop other calls run on.
            self._client = await asyncio.to_thread(self._build_client)
        return self._client

    def _build_client(self) -> AsyncOpenAI:
        api_key: str | EntraTokenProvider | None = self.endpoint.api_key
        if api_key is None and self._token_provider is not None:
            api_key = self._token_provider  # the app's: cached tokens shared by every call
        elif api_key is None and self._credential_factory is not None:
            self._credential = self._credential_factory()
            api_key = EntraTokenProvider(self._credential)
        return sdk_client(self.endpoint, api_key)


def sdk_client(endpoint: RealtimeEndpoint, api_key: str | EntraTokenProvider | None) -> AsyncOpenAI:
    """The SDK client for `endpoint` (blocking for tens of ms: build it off the event loop)."""
    return AsyncOpenAI(
        api_key=api_key,
        base_url=endpoint.base_url,
        websocket_base_url=endpoint.websocket_base_url,
        max_retries=0,
    )


async def shared_client(connector: RealtimeConnector) -> AsyncOpenAI:
    """One client for every call of the app, like `connector`'s: the key, or the app's
    token provider (each connect asks it for a token, cached and renewed)."""
    endpoint = connector.endpoint
    api_key: str | EntraTokenProvider | None = endpoint.api_key
    if api_key is None:
        api_key = connector.token_provider
        if api_key is None:
            raise ValueError("a shared client needs an API key or the app's token provider")
    return await asyncio.to_thread(sdk_client, endpoint, api_key)


def openai_connector(settings: Settings, *, client: AsyncOpenAI | None = None) -> RealtimeConnector:
    """OpenAI, or a compatible server at OPENAI_BASE_URL; raises RealtimeFatal without a key."""
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        raise RealtimeFatal("MEDIA_BACKEND=openai needs OPENAI_API_KEY")
    base = (settings.openai_base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
    websocket_base = None
    if base.startswith(("ws://", "wss://")):
        websocket_base, base = base, _with_scheme(base, {"ws": "http", "wss": "https"})
    endpoint = RealtimeEndpoint(
        model=settings.openai_realtime_model,
        base_url=base,
        api_key=settings.openai_api_key.get_secret_value(),
        websocket_base_url=websocket_base,
    )
    return RealtimeConnector(endpoint, RealtimeConfig.from_settings(settings), client=client)


def azure_connector(
    settings: Settings,
    *,
    credential_factory: Callable[[], BearerCredential] | None = None,
    token_provider: EntraTokenProvider | None = None,
    client: AsyncOpenAI | None = None,
) -> RealtimeConnector:
    """Azure OpenAI's v1 endpoint, with AZURE_OPENAI_API_KEY or else Entra ID (the app's shared
    `token_provider`, or a credential of the connector's own from `credential_factory`)."""
    if settings.azure_openai_endpoint is None or not settings.azure_openai_deployment:
        raise RealtimeFatal(
            "MEDIA_BACKEND=azure-openai needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT"
        )
    config = RealtimeConfig.from_settings(settings)
    base = azure_v1_base(str(settings.azure_openai_endpoint))
    websocket_base = _with_scheme(base, {"http": "ws", "https": "wss"})
    deployment = settings.azure_openai_deployment
    key = settings.azure_openai_api_key
    if key is not None and key.get_secret_value():
        secret = key.get_secret_value()
        # The SDK would also send the key as a bearer token; Azure wants `api-key` alone.
        headers: dict[str, str | Omit] = {"api-key": secret, "Authorization": Omit()}
        endpoint = RealtimeEndpoint(deployment, base, secret, websocket_base, headers)
        return RealtimeConnector(endpoint, config, name="azure-openai", client=client)
    endpoint = RealtimeEndpoint(deployment, base, None, websocket_base)
    if token_provider is not None:
        return RealtimeConnector(
            endpoint, config, name="azure-openai", token_provider=token_provider, client=client
        )
    return RealtimeConnector(
        endpoint,
        config,
        name="azure-openai",
        credential_factory=credential_factory or default_azure_credential,
    )


def azure_v1_base(endpoint: str) -> str:
    """`https://<resource>.openai.azure.com` (with or without /openai[/v1]) -> `.../openai/v1`."""
    base = endpoint.rstrip("/")
    if base.endswith("/openai/v1"):
        return base
    if base.endswith("/openai"):
        return base + "/v1"
    return base + "/openai/v1"


def default_azure_credential() -> BearerCredential:
    """DefaultAzureCredential (managed identity in Azure); imported only when Entra ID is used."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def _with_scheme(url: str, schemes: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=schemes.get(parts.scheme, parts.scheme)))
