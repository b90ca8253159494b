"""Fixtures for the Voice Live backend: the fake service in Voice Live's dialect, reached
through the azure-ai-voicelive SDK, and a backend opened against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from app.agent.tools import ToolConfig
from app.backends.base import CallContext
from app.backends.realtime import RealtimeBackend, ReconnectPolicy
from app.backends.voicelive import conversation_config
from app.backends.voicelive.connection import voicelive_service
from app.settings import Settings
from tests.backends.realtime.conftest import FAST_RECONNECT, FakeActions, FakeOutput, call_context
from tests.backends.realtime.fake_server import FakeRealtime, fake_realtime

VoiceLiveBackend = Callable[..., AbstractAsyncContextManager[tuple[RealtimeBackend, FakeOutput]]]


def voicelive_settings(fake: FakeRealtime, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "media_backend": "voice-live",
        "azure_voicelive_endpoint": fake.voicelive_endpoint,
        "azure_voicelive_api_key": "vl-test-key",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with fake_realtime("voice-live") as service:
        yield service


@pytest.fixture
def open_voicelive(fake: FakeRealtime) -> VoiceLiveBackend:
    """Open a Voice Live backend against `fake` (settings as keyword args, the built-in tools
    unless `tools`, a 16 kHz call unless `rate`); closed on exit."""

    @asynccontextmanager
    async def open_(
        *,
        rate: int = 16000,
        output: FakeOutput | None = None,
        reconnect: ReconnectPolicy = FAST_RECONNECT,
        renew_after_s: float = 3600.0,
        tools: ToolConfig | None = None,
        actions: FakeActions | None = None,
        call: CallContext | None = None,
        **overrides: Any,
    ) -> AsyncIterator[tuple[RealtimeBackend, FakeOutput]]:
        settings = voicelive_settings(fake, **overrides)
        backend = RealtimeBackend(
            voicelive_service(settings),
            conversation_config(settings),
            name="voice-live",
            reconnect=reconnect,
            renew_after_s=renew_after_s,
            renew_deadline_s=renew_after_s + 1.0,
            tools=tools if tools is not None else ToolConfig.built_in(settings),
        )
        output = output or FakeOutput(heard=lambda _: 0.0)
        await backend.open(call or call_context(rate), output, actions or FakeActions())
        try:
            yield backend, output
        finally:
            await backend.close()

    return open_
