"""A real webhook receiver on 127.0.0.1:0: answers each POST as scripted (a status, or HANG
until released), records every request, and checks signatures with the README's verifier."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

HANG = 0  # scripted answer: never answer (until the server stops): the sender times out
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    script: list[int] = field(default_factory=list)  # answers in order, then 200
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[Receiver], bool], within_s: float = 10) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        status = self.script.pop(0) if self.script else 200
        self.deliveries.append(Delivery(dict(request.headers), body, status))
        self.changed.set()
        if status == HANG:
            await self.release.wait()
            status = 200
        return web.Response(status=status)

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if 200 <= d.answered < 300]


@asynccontextmanager
async def receiving(script: list[int] | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(script=list(script or []))
    app = web.Application()
    app.router.add_post("/calls", receiver._handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/calls"
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()


def readme_verifier() -> Callable[[str, bytes, str], bool]:
    """The `verify` function exactly as the README shows receivers (a receiver written from the
    README alone)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("A receiver verifies a delivery", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README shows no verifier"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # noqa: S102 (the README's own code)
    verify: Callable[[str, bytes, str], bool] = namespace["verify"]
    return verify
