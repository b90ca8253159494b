"""A real HTTP server on 127.0.0.1:0 playing the operator's custom tools, recording requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ToolRequest:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ToolServer:
    """POST /json, /text, /empty, /big, /fail (500), /slow (answers once `release` is set)."""

    base_url: str = ""
    requests: list[ToolRequest] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(ToolRequest(request.path, dict(request.headers), body))
        path = request.path
        if path == "/json":
            return web.json_response({"found": True, "echo": body["arguments"]})
        if path == "/text":
            return web.Response(text="Order 42 ships tomorrow.")
        if path == "/empty":
            return web.Response(status=204)
        if path == "/big":
            return web.Response(text="x" * 200_000)
        if path == "/fail":
            return web.Response(status=500, text="database down")
        if path == "/slow":
            self.slow_started.set()
            await self.release.wait()
            return web.json_response({"slow": "done"})
        return web.Response(status=404, text="no such tool")


@asynccontextmanager
async def tool_server() -> AsyncIterator[ToolServer]:
    """Serve a ToolServer for the duration of the block."""
    server = ToolServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server._handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release.set()  # a /slow request still waiting must not hold the shutdown
        await runner.cleanup()


def tools_file(directory: Path, tools: list[dict[str, Any]] | Any) -> Path:
    """Write an AGENT_TOOLS_FILE with `tools`; its path."""
    path = directory / "tools.json"
    path.write_text(json.dumps(tools), encoding="utf-8")
    return path


def http_tool(name: str, url: str, **fields: Any) -> dict[str, Any]:
    """One AGENT_TOOLS_FILE entry taking an `order_id` string."""
    entry: dict[str, Any] = {
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        "url": url,
    }
    entry.update(fields)
    return entry
