"""How the SDK reaches Voice Live: the URL, query and headers it really sends, key and bearer."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from app.backends.base import BackendError
from app.backends.voicelive import create_voicelive_backend, open_voicelive_factory
from app.backends.voicelive.connection import VOICELIVE_SCOPE
from app.settings import Settings
from tests.backends.realtime.conftest import FakeActions, FakeOutput, call_context
from tests.backends.realtime.conftest import realtime_settings as voicelive_settings
from tests.backends.realtime.fake_server import FakeRealtime
from tests.backends.voicelive.conftest import VoiceLiveBackend


class RecordingCredential:
    """An azure-identity style async credential that counts the tokens it hands out."""

    def __init__(self, *, fail: bool = False) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False
        self._fail = fail

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self._fail:
            raise ClientAuthenticationError("no managed identity here")
        return AccessToken(f"entra-token-{len(self.scopes)}", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


def query_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


async def test_a_key_goes_in_the_api_key_header_and_the_model_in_the_query(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive(azure_voicelive_model="gpt-4o-realtime-preview"):
        await (await fake.session()).wait_for_event("session.update")
    handshake = fake.handshakes[0]
    assert urlsplit(handshake.path).path == "/voice-live/realtime"
    query = query_of(handshake.path)
    assert query["model"] == ["gpt-4o-realtime-preview"]
    assert query["api-version"][0]  # the SDK's default version
    assert query["x-ms-client-sdk"][0].startswith("azsdk-python-ai-voicelive/")
    assert handshake.headers["api-key"] == "vl-test-key"
    assert "Authorization" not in handshake.headers
    assert "ai-voicelive" in handshake.headers["User-Agent"]


async def test_an_agent_goes_in_the_query_instead_of_a_model(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    settings = {
        "azure_voicelive_agent_id": "front-desk",
        "azure_voicelive_agent_project": "contoso-voice",
        "azure_voicelive_api_version": "2025-10-01",
        "realtime_greeting": "Greet the caller.",
    }
    async with open_voicelive(**settings):
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        greeting = await session.wait_for_event("response.create")
    query = query_of(fake.handshakes[0].path)
    assert query["agent-name"] == ["front-desk"]
    assert query["agent-project-name"] == ["contoso-voice"]
    assert query["api-version"] == ["2025-10-01"]
    assert "model" not in query
    assert "instructions" not in update["session"]  # the agent's own apply
    assert "response" not in greeting  # nor replaced for the greeting
    note = session.of_type("conversation.item.create")[0]["item"]
    assert note["content"][0]["text"] == "Start the call now: Greet the caller."


async def test_without_a_key_the_apps_entra_credential_is_shared_by_every_call(
    fake: FakeRealtime,
) -> None:
    credential = RecordingCredential()
    settings = voicelive_settings(fake, azure_voicelive_api_key=None)
    async with AsyncExitStack() as stack:
        factory = await open_voicelive_factory(
            settings, stack, credential_factory=lambda: credential
        )
        for index in range(2):
            backend = factory(settings)
            await backend.open(call_context(16000), FakeOutput(), FakeActions())
            await (await fake.session(index)).wait_for_event("session.update")
            await backend.close()
        assert not credential.closed  # the app's: it outlives the calls
    assert credential.closed
    assert credential.scopes == [(VOICELIVE_SCOPE,)]  # one token, cached for both calls
    for handshake in fake.handshakes:
        assert handshake.headers["Authorization"] == "Bearer entra-token-1"
        assert "api-key" not in handshake.headers


async def test_no_entra_token_is_fatal(fake: FakeRealtime) -> None:
    settings = voicelive_settings(fake, azure_voicelive_api_key=None)
    output = FakeOutput()
    async with AsyncExitStack() as stack:
        factory = await open_voicelive_factory(
            settings, stack, credential_factory=lambda: RecordingCredential(fail=True)
        )
        backend = factory(settings)
        await backend.open(call_context(16000), output, FakeActions())
        await output.wait_for(lambda o: bool(o.ended))
        await backend.close()
    assert "Entra ID" in output.ended[0]
    assert fake.handshakes == []


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_a_refused_handshake_is_fatal_at_once(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend, status: int
) -> None:
    fake.refuse_status = status
    async with open_voicelive() as (_, output):
        await output.wait_for(lambda o: bool(o.ended))
    assert f"HTTP {status}" in output.ended[0]
    assert len(fake.handshakes) == 1
    assert output.reported("error")[0]["fatal"] is True


async def test_an_unavailable_service_is_retried_then_ends_the_session(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    fake.refuse_status = 503
    async with open_voicelive() as (_, output):
        await output.wait_for(lambda o: bool(o.ended))
    assert len(fake.handshakes) == 4  # FAST_RECONNECT's attempts
    assert len(output.reported("reconnect")) == 4
    assert "stayed unreachable" in output.ended[0]


def test_the_backend_without_an_endpoint_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="AZURE_VOICELIVE_ENDPOINT"):
        Settings(_env_file=None, media_backend="voice-live")
    with pytest.raises(BackendError, match="AZURE_VOICELIVE_ENDPOINT"):
        create_voicelive_backend(Settings(_env_file=None))


def test_an_agent_needs_its_project() -> None:
    with pytest.raises(ValueError, match="AZURE_VOICELIVE_AGENT_PROJECT"):
        Settings(_env_file=None, azure_voicelive_agent_id="front-desk")
