"""A real downstream service on 127.0.0.1:0 for the websocket backend's tests, and the fakes
of what the backend acts through (call actions that refuse, wait or break)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from app.backends.base import ActionAccepted, ActionFailed, CallContext, StreamFormat
from app.backends.websocket import WebSocketBackend
from tests.backends.realtime.conftest import FakeActions, FakeOutput


@dataclass
class Downstream:
    """A downstream service that echoes audio and records control messages, the handshakes'
    Authorization headers and how each connection closed; answers the handshake with
    `refuse_status` while that is set, or redirects it to `redirect_to`."""

    server: Server | None = None
    starts: list[dict[str, object]] = field(default_factory=list)
    controls: list[dict[str, object]] = field(default_factory=list)
    audio_frames: int = 0
    connections: list[ServerConnection] = field(default_factory=list)
    drop_after_frames: int | None = None
    authorizations: list[str | None] = field(default_factory=list)
    refuse_status: int | None = None
    redirect_to: str | None = None  # answer every handshake with a 302 to this URL
    refused: int = 0
    # (close code received, the last text message before it) per finished connection
    closings: list[tuple[int | None, str | None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/agent"

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.authorizations.append(request.headers.get("Authorization"))
        self.changed.set()
        if self.redirect_to is not None:
            response = connection.respond(302, "moved\n")
            response.headers["Location"] = self.redirect_to
            return response
        if self.refuse_status is None:
            return None
        self.refused += 1
        return connection.respond(self.refuse_status, "not now\n")

    async def handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        last_text: str | None = None
        async for message in connection:
            if isinstance(message, bytes):
                self.audio_frames += 1
                self.changed.set()
                await connection.send(message)
                if (
                    self.drop_after_frames is not None
                    and self.audio_frames == self.drop_after_frames
                ):
                    await connection.close()
                    break
            else:
                last_text = message
                decoded = json.loads(message)
                (self.starts if decoded["type"] == "start" else self.controls).append(decoded)
                self.changed.set()
        self.closings.append((connection.close_code, last_text))
        self.changed.set()

    def results(self) -> list[dict[str, object]]:
        return [control for control in self.controls if control["type"] == "action_result"]

    async def wait_for(
        self, predicate: Callable[[Downstream], bool], within_s: float = 5.0
    ) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def serving(service: Downstream | None = None) -> AsyncIterator[Downstream]:
    """`service` (a new Downstream by default) listening on 127.0.0.1, on a free port."""
    service = service or Downstream()
    async with serve(
        service.handler, "127.0.0.1", 0, process_request=service.process_request
    ) as server:
        service.server = server
        yield service


class RefusingActions(FakeActions):
    """Call actions whose transfers are refused, as an unconfigured destination is."""

    async def transfer(self, target: str) -> ActionAccepted:
        self.calls.append(("transfer", target))
        raise ActionFailed("destination_not_allowed", "transfers may only go to: sales")


class GatedActions(FakeActions):
    """Call actions that each wait for `gate` (a slow ACS request)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def transfer(self, target: str) -> ActionAccepted:
        self.started.set()
        await self.gate.wait()
        return await super().transfer(target)

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        self.started.set()
        await self.gate.wait()
        return await super().send_dtmf(tones)


class BrokenActions(FakeActions):
    """Call actions that fail in a way nobody expected."""

    async def hang_up(self) -> ActionAccepted:
        raise RuntimeError("surprise")


@asynccontextmanager
async def backend_for(
    downstream: Downstream, actions: FakeActions | None = None
) -> AsyncIterator[tuple[WebSocketBackend, FakeOutput, ServerConnection]]:
    """A WebSocketBackend connected to `downstream` (the link open: events go straight to the
    socket), with its downstream connection."""
    backend = WebSocketBackend(downstream.url)
    output = FakeOutput()
    await backend.open(
        CallContext("ws-actions", None, StreamFormat(16000)), output, actions or FakeActions()
    )
    try:
        await output.wait_for(lambda o: bool(o.reported("connected")))
        yield backend, output, downstream.connections[-1]
    finally:
        await backend.close()


def ok_result(action: str, operation_context: str) -> dict[str, object]:
    return {
        "type": "action_result",
        "action": action,
        "ok": True,
        "error": None,
        "code": None,
        "operation_context": operation_context,
    }
