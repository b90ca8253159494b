"""Server-Sent Events: the console's stream of hub messages, and the response that carries it.

`EventStreamResponse` watches for the client leaving while it streams (Starlette's
`StreamingResponse` only notices on its next write), so a closed browser tab releases its
subscription at once rather than at the next heartbeat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.calls.models import CallRecord
from app.observability.console_feed import EventHub, SubscriptionClosed, snapshot_message

HEARTBEAT_S = 15.0
RECONNECT_MS = 2000  # how soon EventSource retries after a dropped connection
RESYNC_INTERVAL_S = 1.0  # at most one catch-up snapshot per second for a client that fell behind

Snapshot = Callable[[], Awaitable[list[CallRecord]]]


async def console_stream(
    hub: EventHub,
    snapshot: Snapshot,
    heartbeat_s: float = HEARTBEAT_S,
    resync_interval_s: float = RESYNC_INTERVAL_S,
) -> AsyncGenerator[str, None]:
    """SSE text: a snapshot, then every hub message, a comment when idle for `heartbeat_s`.

    Subscribes before reading the snapshot, so nothing published meanwhile is missed; the
    subscription ends with the generator.
    """
    with hub.subscribe() as subscription:
        yield f"retry: {RECONNECT_MS}\n\n" + _data(snapshot_message(await snapshot()))
        last_resync = time.monotonic()
        owed_resync = False
        while True:
            try:
                batch = await subscription.get(max_wait_s=heartbeat_s)
            except SubscriptionClosed:
                return
            owed_resync = owed_resync or subscription.take_dropped() > 0
            chunk = "".join(_data(message) for message in batch) if batch else ": ping\n\n"
            if owed_resync and time.monotonic() - last_resync >= resync_interval_s:
                # Messages were lost: a full snapshot after them puts the client right again.
                chunk += _data(snapshot_message(await snapshot()))
                last_resync, owed_resync = time.monotonic(), False
            yield chunk


def _data(message: str) -> str:
    # Our JSON never holds a raw newline, so one `data:` line per message is enough.
    return f"data: {message}\n\n"


class EventStreamResponse(Response):
    """A `text/event-stream` response that ends when its source ends or the client leaves."""

    media_type = "text/event-stream"

    def __init__(
        self,
        source: AsyncGenerator[str, None],
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.source = source
        self.status_code = status_code
        self.background = background
        self.init_headers(
            {
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",  # proxies (nginx, App Service) must not buffer
                **(headers or {}),
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.create_task(self._stream(send))
        leaving = asyncio.create_task(_client_left(receive))
        try:
            await asyncio.wait({streaming, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, leaving):
                task.cancel()
            results = await asyncio.gather(streaming, leaving, return_exceptions=True)
            await self.source.aclose()
        error = results[0]
        if isinstance(error, Exception) and not isinstance(error, OSError):
            raise error
        if self.background is not None:
            await self.background()

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.source:
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _client_left(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
