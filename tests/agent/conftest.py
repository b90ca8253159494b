"""Fixtures for the agent tools: a real HTTP tool server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.agent.tool_server import ToolServer, tool_server


@pytest.fixture
async def tools_http() -> AsyncIterator[ToolServer]:
    async with tool_server() as server:
        yield server
