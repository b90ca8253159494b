"""A pure ASGI middleware that caps HTTP request bodies in size and in time.

An announced `Content-Length` over the cap is answered 413 before the app runs. Bodies without one
(chunked) are counted as the app reads them: past the cap, or past the time allowed for the whole
body, the app's read fails and the client gets 413 / 408 instead of whatever the app answers.
Nothing is buffered here; WebSocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NoReturn

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_body


@dataclass(frozen=True, slots=True)
class BodyRejection:
    status: int
    code: str
    message: str


class BodyRejected(Exception):
    """Raised into the app's `receive()` once the body broke a limit."""


class BodyLimitMiddleware:
    """Limit every HTTP request body to `max_body_bytes`, received within `body_timeout_s`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.too_large = BodyRejection(
            413, "payload_too_large", f"request body exceeds {max_body_bytes} bytes"
        )
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _reject(scope, receive, send, _BAD_LENGTH)
            return
        if declared is not None and declared > self.max_body_bytes:
            await _reject(scope, receive, send, self.too_large)
            return
        guard = _BodyGuard(self, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # Our own BodyRejected, or whatever the app turned it into: the limit is the story.
            if guard.rejection is None:
                raise
        if guard.rejection is not None and not guard.response_started:
            await _reject(scope, receive, send, guard.rejection)


class _BodyGuard:
    """One request's counting `receive` and the `send` that hides the app's answer once cut off."""

    def __init__(self, limits: BodyLimitMiddleware, receive: Receive, send: Send) -> None:
        self._limits = limits
        self._receive = receive
        self._send = send
        self._received = 0
        self._body_done = False
        self._deadline: float | None = None
        self.rejection: BodyRejection | None = None
        self.response_started = False

    async def receive(self) -> Message:
        if self.rejection is not None:
            raise BodyRejected(self.rejection.message)
        if self._body_done:
            # After the body only `http.disconnect` comes, possibly much later: no deadline.
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._limits.body_timeout_s
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self._fail(_SLOW_BODY)
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limits.max_body_bytes:
                self._fail(self._limits.too_large)
            self._body_done = not message.get("more_body", False)
        else:
            self._body_done = True
        return message

    async def send(self, message: Message) -> None:
        if self.rejection is not None:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)

    def _fail(self, rejection: BodyRejection) -> NoReturn:
        self.rejection = rejection
        raise BodyRejected(rejection.message)


_BAD_LENGTH = BodyRejection(400, "invalid_request", "invalid Content-Length header")
_SLOW_BODY = BodyRejection(408, "request_timeout", "request body not received in time")


def _content_length(scope: Scope) -> int | None:
    """The announced body length; None when absent, -1 when unusable."""
    values = {value for name, value in scope["headers"] if name == b"content-length"}
    if not values:
        return None
    if len(values) > 1:
        return -1
    raw = values.pop().strip()
    if not raw.isdigit():
        return -1
    # Python refuses to parse very long integers; any such length is over every cap anyway.
    return int(raw) if len(raw) <= 18 else 10**18


async def _reject(scope: Scope, receive: Receive, send: Send, rejection: BodyRejection) -> None:
    # `Connection: close` makes the server drop the rest of the body rather than read it.
    response = JSONResponse(
        error_body(rejection.code, rejection.message),
        status_code=rejection.status,
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
