"""The media session's raw ASGI channels, and the fallback when the middleware is not installed."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from app.media.asgi_channels import SCOPE_KEY, RawChannelsMiddleware, raw_channels


async def _receive() -> Message:
    return {"type": "websocket.connect"}


async def _send(message: Message) -> None:
    return None


async def test_the_middleware_hands_the_servers_own_channels_to_the_socket() -> None:
    seen: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(raw_channels(WebSocket(scope, receive, send)))

    scope: Scope = {"type": "websocket", "path": "/ws", "headers": []}
    await RawChannelsMiddleware(app)(scope, _receive, _send)
    assert seen == [(_receive, _send)]
    assert SCOPE_KEY in scope


async def test_http_scopes_are_left_alone() -> None:
    scope: Scope = {"type": "http", "path": "/", "headers": []}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    await RawChannelsMiddleware(app)(scope, _receive, _send)
    assert SCOPE_KEY not in scope


def test_without_the_middleware_the_websockets_own_methods_are_used() -> None:
    websocket = WebSocket({"type": "websocket", "path": "/ws", "headers": []}, _receive, _send)
    receive, send = raw_channels(websocket)
    assert receive == websocket.receive
    assert send == websocket.send
