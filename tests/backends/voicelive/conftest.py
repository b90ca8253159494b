"""Fixtures for the Voice Live backend: the Realtime backend's fixtures (tests/backends/realtime)
with the service fixed to Voice Live, so the fake speaks its dialect and is reached through the
azure-ai-voicelive SDK; calls are at 16 kHz unless a test says otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from app.agent.tools import ToolConfig
from app.backends.realtime import RealtimeBackend
from app.settings import Settings
from tests.backends.realtime.conftest import (
    FakeOutput,
    OpenBackend,
    Service,
    call_context,
    fake,  # noqa: F401 (a fixture, for this folder's tests)
    open_backend,  # noqa: F401 (a fixture, for this folder's tests)
)

VoiceLiveBackend = Callable[..., AbstractAsyncContextManager[tuple[RealtimeBackend, FakeOutput]]]


@pytest.fixture
def service() -> Service:
    return "voice-live"


@pytest.fixture
def open_voicelive(open_backend: OpenBackend) -> VoiceLiveBackend:  # noqa: F811
    """`open_backend` with `settings`, on a call at `rate` (16 kHz by default), with the built-in
    tools the app offers unless `tools`, and a caller who has heard nothing unless `output`."""

    @asynccontextmanager
    async def open_(
        *,
        rate: int = 16000,
        tools: ToolConfig | None = None,
        output: FakeOutput | None = None,
        **settings: Any,
    ) -> AsyncIterator[tuple[RealtimeBackend, FakeOutput]]:
        if tools is None:
            tools = ToolConfig.built_in(Settings(_env_file=None, **settings))
        output = output or FakeOutput(heard=lambda _: 0.0)
        async with open_backend(
            call=call_context(rate), tools=tools, output=output, **settings
        ) as (
            backend,
            out,
        ):
            yield backend, out

    return open_
