"""The media socket's raw ASGI channels, kept aside before the framework wraps them.

Starlette's `WebSocket.receive`/`send` and its exception middleware's send wrapper each add a
coroutine call with state checks per message; at 50 messages a second per call each way that
showed up in the benchmark's profile. `RawChannelsMiddleware` (outermost) records the server's
own `receive`/`send` in the WebSocket scope; the media session reads and writes frames on them
and keeps the `WebSocket` object for the handshake and the close.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

SCOPE_KEY = "acs_bridge.raw_channels"


class RawChannelsMiddleware:
    """Puts the server's `receive`/`send` of every WebSocket connection in its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SCOPE_KEY] = (receive, send)
        await self.app(scope, receive, send)


def raw_channels(websocket: WebSocket) -> tuple[Receive, Send]:
    """The connection's raw channels; the WebSocket's own methods when the middleware is absent."""
    channels: Any = websocket.scope.get(SCOPE_KEY)
    if channels is None:
        return websocket.receive, websocket.send
    receive, send = channels
    return receive, send
