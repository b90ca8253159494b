"""The last hop out: the pacer's frames and StopAudio as ACS JSON on the media socket."""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import Send

from app.media.protocol import OutboundItem, outbound_message


class OutboundSocket:
    """Writes outbound items on the socket's raw ASGI `send`."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    def send(self, item: OutboundItem) -> Awaitable[None]:
        """Encode `item` and send it; the server's own awaitable (the pacer may step it)."""
        return self._send({"type": "websocket.send", "text": outbound_message(item)})
