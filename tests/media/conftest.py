"""Fixtures for media tests: the app on a real socket, and ACS-like media streams into it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from app.emulator.media_client import MediaStream, StreamScript
from tests.conftest import AppFactory, LiveApp

StreamFactory = Callable[..., AbstractAsyncContextManager[MediaStream]]


def ws_url(live: LiveApp) -> str:
    return live.base_url.replace("http://", "ws://") + "/ws"


@pytest.fixture
def open_stream() -> StreamFactory:
    """Open a media stream (ACS's side) to a live app."""

    @asynccontextmanager
    async def open_(
        live: LiveApp, *, sample_rate: int = 16000, script: StreamScript | None = None, **kw: Any
    ) -> AsyncIterator[MediaStream]:
        stream = MediaStream(
            ws_url(live),
            kw.pop("call_connection_id", f"call-{uuid.uuid4()}"),
            kw.pop("correlation_id", f"corr-{uuid.uuid4()}"),
            sample_rate=sample_rate,
            script=script or StreamScript(),
            **kw,
        )
        await stream.open()
        try:
            yield stream
        finally:
            await stream.close()

    return open_


@pytest.fixture
async def echo_app(start_app: AppFactory) -> AsyncIterator[LiveApp]:
    async with start_app(media_backend="echo", media_idle_timeout_s=5) as live:
        yield live
