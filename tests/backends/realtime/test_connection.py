"""Where the sockets go and how they authenticate: OpenAI, Azure OpenAI with a key or Entra ID."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from app.backends.base import BackendError
from app.backends.catalog import backend_factory, open_backend_factory
from app.backends.realtime import (
    RealtimeBackend,
    RealtimeConfig,
    create_azure_backend,
    create_openai_backend,
    open_azure_factory,
    open_openai_factory,
)
from app.backends.realtime.connection import (
    AZURE_SCOPE,
    EntraTokenProvider,
    RealtimeConnector,
    azure_connector,
    azure_v1_base,
)
from app.settings import Settings
from tests.backends.realtime.conftest import FAST_RECONNECT, FakeActions, FakeOutput, call_context
from tests.backends.realtime.fake_server import FakeRealtime


class FakeCredential:
    """An azure-identity style async credential issuing numbered tokens."""

    def __init__(self, lifetime_s: float = 3600.0, fail: bool = False) -> None:
        self.lifetime_s = lifetime_s
        self.fail = fail
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.fail:
            raise ClientAuthenticationError("no managed identity here")
        self.scopes.append(scopes)
        return AccessToken(f"entra-token-{len(self.scopes)}", int(time.time() + self.lifetime_s))

    async def close(self) -> None:
        self.closed = True


def azure_settings(fake: FakeRealtime, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "media_backend": "azure-openai",
        "azure_openai_endpoint": fake.azure_endpoint,
        "azure_openai_deployment": "my-realtime",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running(
    connector: RealtimeConnector,
) -> AsyncIterator[tuple[RealtimeBackend, FakeOutput]]:
    backend = RealtimeBackend(
        connector, RealtimeConfig(instructions="hi"), reconnect=FAST_RECONNECT
    )
    output = FakeOutput()
    await backend.open(call_context(), output, FakeActions())
    try:
        yield backend, output
    finally:
        await backend.close()


async def test_azure_with_a_key_uses_the_v1_path_and_the_api_key_header(fake: FakeRealtime) -> None:
    settings = azure_settings(fake, azure_openai_api_key="azure-secret")
    async with running(azure_connector(settings)):
        await (await fake.session()).wait_for_event("session.update")
    handshake = fake.handshakes[0]
    assert handshake.path == "/openai/v1/realtime?model=my-realtime"
    assert handshake.headers["api-key"] == "azure-secret"
    assert "Authorization" not in handshake.headers


async def test_azure_without_a_key_sends_an_entra_bearer_token(fake: FakeRealtime) -> None:
    credential = FakeCredential()
    connector = azure_connector(azure_settings(fake), credential_factory=lambda: credential)
    async with running(connector):
        await (await fake.session()).wait_for_event("session.update")
    handshake = fake.handshakes[0]
    assert handshake.path == "/openai/v1/realtime?model=my-realtime"
    assert handshake.headers["Authorization"] == "Bearer entra-token-1"
    assert "api-key" not in handshake.headers
    assert credential.scopes == [(AZURE_SCOPE,)]
    assert credential.closed


async def test_a_reconnect_gets_a_fresh_token_when_the_old_one_is_near_expiry(
    fake: FakeRealtime,
) -> None:
    credential = FakeCredential(lifetime_s=60)  # inside the refresh margin: renewed every time
    connector = azure_connector(azure_settings(fake), credential_factory=lambda: credential)
    async with running(connector):
        await (await fake.session()).drop()
        await (await fake.session(1)).wait_for_event("session.update")
    assert [h.headers["Authorization"] for h in fake.handshakes] == [
        "Bearer entra-token-1",
        "Bearer entra-token-2",
    ]


async def test_a_valid_token_is_reused_across_reconnects(fake: FakeRealtime) -> None:
    credential = FakeCredential(lifetime_s=3600)
    connector = azure_connector(azure_settings(fake), credential_factory=lambda: credential)
    async with running(connector):
        await (await fake.session()).drop()
        await (await fake.session(1)).wait_for_event("session.update")
    assert len(credential.scopes) == 1
    assert fake.handshakes[1].headers["Authorization"] == "Bearer entra-token-1"


async def test_no_entra_token_is_fatal(fake: FakeRealtime) -> None:
    credential = FakeCredential(fail=True)
    connector = azure_connector(azure_settings(fake), credential_factory=lambda: credential)
    async with running(connector) as (_, output):
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert "Entra ID" in output.ended[0]
    assert fake.handshakes == []


async def test_token_provider_refreshes_only_near_expiry() -> None:
    credential = FakeCredential(lifetime_s=1000)
    now = [time.time()]
    provider = EntraTokenProvider(credential, margin_s=300, clock=lambda: now[0])
    assert await provider() == "entra-token-1"
    now[0] += 600
    assert await provider() == "entra-token-1"
    now[0] += 150  # 250 s left: inside the margin
    assert await provider() == "entra-token-2"


async def test_openai_base_url_may_be_a_websocket_url(fake: FakeRealtime) -> None:
    settings = Settings(
        _env_file=None,
        openai_api_key="sk-ws",
        openai_base_url=f"ws://127.0.0.1:{fake.port}/v1",
        openai_realtime_model="gpt-realtime-mini",
    )
    backend = create_openai_backend(settings)
    await backend.open(call_context(), FakeOutput(), FakeActions())
    try:
        await (await fake.session()).wait_for_event("session.update")
    finally:
        await backend.close()
    assert fake.handshakes[0].path == "/v1/realtime?model=gpt-realtime-mini"
    assert fake.handshakes[0].headers["Authorization"] == "Bearer sk-ws"


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://res.openai.azure.com",
        "https://res.openai.azure.com/",
        "https://res.openai.azure.com/openai",
        "https://res.openai.azure.com/openai/v1/",
    ],
)
def test_azure_endpoint_forms_all_lead_to_the_v1_base(endpoint: str) -> None:
    assert azure_v1_base(endpoint) == "https://res.openai.azure.com/openai/v1"


def test_openai_backend_without_a_key_is_a_fatal_backend_error() -> None:
    with pytest.raises(BackendError) as caught:
        create_openai_backend(Settings(_env_file=None, openai_api_key=None))
    assert caught.value.fatal
    assert "OPENAI_API_KEY" in str(caught.value)


def test_azure_backend_reports_its_name() -> None:
    settings = Settings(
        _env_file=None,
        azure_openai_endpoint="https://res.openai.azure.com",
        azure_openai_deployment="dep",
        azure_openai_api_key="k",
    )
    backend = create_azure_backend(settings)
    assert backend.name == "azure-openai"
    assert backend.sample_rate == 24000


async def test_calls_share_the_apps_entra_credential_and_its_cached_token(
    fake: FakeRealtime,
) -> None:
    created: list[FakeCredential] = []

    def credential_factory() -> FakeCredential:
        created.append(FakeCredential(lifetime_s=3600))
        return created[-1]

    async with AsyncExitStack() as stack:
        create = await open_azure_factory(
            azure_settings(fake), stack, credential_factory=credential_factory
        )
        first, second = create(azure_settings(fake)), create(azure_settings(fake))
        for index, backend in enumerate((first, second)):
            await backend.open(call_context(), FakeOutput(), FakeActions())
            await (await fake.session(index)).wait_for_event("session.update")
        await first.close()
        await second.close()
        assert len(created) == 1  # one credential for the app, not one per call
        assert not created[0].closed  # calls end; the app's credential stays
    assert created[0].closed  # closed with the app
    assert created[0].scopes == [(AZURE_SCOPE,)]  # one token fetch served both calls
    assert [h.headers["Authorization"] for h in fake.handshakes] == ["Bearer entra-token-1"] * 2


async def test_calls_share_the_apps_sdk_client_which_closes_with_the_app(
    fake: FakeRealtime,
) -> None:
    settings = Settings(
        _env_file=None, openai_api_key="sk-test", openai_base_url=fake.openai_base_url
    )
    async with AsyncExitStack() as stack:
        create = await open_openai_factory(settings, stack)
        assert isinstance(create, functools.partial)
        client = create.keywords["client"]
        first, second = create(settings), create(settings)
        for index, backend in enumerate((first, second)):
            await backend.open(call_context(), FakeOutput(), FakeActions())
            await (await fake.session(index)).wait_for_event("session.update")
        await first.close()
        await second.close()
        assert not client.is_closed()  # calls end; the app's client stays
    assert client.is_closed()
    assert len(fake.handshakes) == 2


async def test_with_an_api_key_no_credential_is_opened(fake: FakeRealtime) -> None:
    def credential_factory() -> FakeCredential:
        raise AssertionError("no Entra credential is needed with an API key")

    async with AsyncExitStack() as stack:
        create = await open_azure_factory(
            azure_settings(fake, azure_openai_api_key="azure-secret"),
            stack,
            credential_factory=credential_factory,
        )
        assert isinstance(create, functools.partial)
        assert create.func is create_azure_backend
        assert "token_provider" not in create.keywords


async def test_the_app_opens_the_azure_backend_through_its_lifespan() -> None:
    settings = Settings(
        _env_file=None,
        media_backend="azure-openai",
        azure_openai_endpoint="https://res.openai.azure.com",
        azure_openai_deployment="dep",
        azure_openai_api_key="k",
    )
    async with AsyncExitStack() as stack:
        factory = await open_backend_factory("azure-openai", settings, stack)
        backend = factory(settings)
        assert isinstance(backend, RealtimeBackend)
        assert backend.name == "azure-openai"
        echo = await open_backend_factory("echo", settings, stack)
        assert echo is backend_factory("echo")
