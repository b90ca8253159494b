"""Fixtures for media tests: the app on a real socket, and ACS-like media streams into it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppFactory, LiveApp, StreamFactory, ws_url

__all__ = ["StreamFactory", "ws_url"]


@pytest.fixture
async def echo_app(start_app: AppFactory) -> AsyncIterator[LiveApp]:
    async with start_app(media_backend="echo", media_idle_timeout_s=5) as live:
        yield live
