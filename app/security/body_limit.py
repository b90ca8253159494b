"""A pure ASGI middleware that caps HTTP request bodies in size and in time.

An announced `Content-Length` over the cap is answered 413 before the app runs. Bodies without one
(chunked) are counted as the app reads them: past the cap, or past the time allowed for the whole
body, the app's read fails and the client gets 413 / 408 instead of whatever the app answers.
A 413 goes out at once, then the rest of the body is read and discarded (up to `drain_bytes`,
within the body timeout) before the connection closes: closing on unread bytes makes the kernel
reset the connection, and a client still writing would never read the 413. Nothing is buffered
here; WebSocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import NoReturn

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body


@dataclass(frozen=True, slots=True)
class BodyRejection:
    status: int
    code: str
    message: str


class BodyRejected(Exception):
    """Raised into the app's `receive()` once the body broke a limit."""


# A refused body is read and dropped up to max(4 MiB, 4 x the cap): a client that writes that
# much before reading still gets its 413, and a refused request costs bounded bandwidth (no
# memory: each chunk is dropped as it comes). Past it the connection just closes.
DRAIN_MIN_BYTES = 4 * 1024 * 1024
DRAIN_LIMIT_FACTOR = 4


@dataclass(frozen=True, slots=True)
class _Drain:
    """How much of a refused body to read and discard, and until when."""

    max_bytes: int
    deadline: float


class BodyLimitMiddleware:
    """Limit every HTTP request body to `max_body_bytes`, received within `body_timeout_s`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout_s: float,
        drain_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.too_large = BodyRejection(
            413, "payload_too_large", f"request body exceeds {max_body_bytes} bytes"
        )
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.drain_bytes = (
            drain_bytes
            if drain_bytes is not None
            else max(DRAIN_MIN_BYTES, DRAIN_LIMIT_FACTOR * max_body_bytes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _reject(scope, receive, send, _BAD_LENGTH)
            return
        if declared is not None and declared > self.max_body_bytes:
            # A client that asked `Expect: 100-continue` sends no body after our 413.
            drain = None if _expects_continue(scope) else self._drain(None)
            await _reject(scope, receive, send, self.too_large, drain)
            return
        guard = _BodyGuard(self, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # Our own BodyRejected, or whatever the app turned it into: the limit is the story.
            if guard.rejection is None:
                raise
        if guard.rejection is not None and not guard.response_started:
            drain = None
            if guard.rejection is self.too_large and not guard.body_done:
                drain = self._drain(guard.deadline)
            await _reject(scope, receive, send, guard.rejection, drain)

    def _drain(self, deadline: float | None) -> _Drain:
        """The drain bound: `drain_bytes`, by `deadline` (default: a body timeout from now)."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        return _Drain(self.drain_bytes, deadline)


class _BodyGuard:
    """One request's counting `receive` and the `send` that hides the app's answer once cut off."""

    def __init__(self, limits: BodyLimitMiddleware, receive: Receive, send: Send) -> None:
        self._limits = limits
        self._receive = receive
        self._send = send
        self._received = 0
        self.body_done = False
        self.deadline: float | None = None
        self.rejection: BodyRejection | None = None
        self.response_started = False

    async def receive(self) -> Message:
        if self.rejection is not None:
            raise BodyRejected(self.rejection.message)
        if self.body_done:
            # After the body only `http.disconnect` comes, possibly much later: no deadline.
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self.deadline is None:
            self.deadline = loop.time() + self._limits.body_timeout_s
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            self._fail(_SLOW_BODY)
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            if self._received > self._limits.max_body_bytes:
                self._fail(self._limits.too_large)
        else:
            self.body_done = True
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


def _expects_continue(scope: Scope) -> bool:
    return any(
        name == b"expect" and value.strip().lower() == b"100-continue"
        for name, value in scope["headers"]
    )


async def _reject(
    scope: Scope,
    receive: Receive,
    send: Send,
    rejection: BodyRejection,
    drain: _Drain | None = None,
) -> None:
    """Answer `rejection` and close; with `drain`, discard the rest of the body before closing."""
    response = JSONResponse(
        error_body(rejection.code, rejection.message),
        status_code=rejection.status,
        headers={"Connection": "close"},
    )
    if drain is None:
        await response(scope, receive, send)
        return
    # The whole answer goes out now (the client reads it by its Content-Length); only ending the
    # response, which closes the connection, waits until the rest of the body is read.
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body, "more_body": True})
    await _discard_body(receive, drain)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _discard_body(receive: Receive, drain: _Drain) -> None:
    """Read and drop the request body's remaining chunks, within `drain`'s bytes and deadline."""
    discarded = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(drain.deadline):
            while discarded <= drain.max_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                discarded += len(message.get("body", b""))
