"""The websocket backend: relays a call to a downstream service (format: docs/websocket-backend.md).

Binary frames carry PCM16 mono both ways; text frames carry JSON control messages. If the
downstream drops, the call stays up: caller audio is discarded (and counted) while a reconnect
loop retries with exponential backoff, then sends `start` again with `"resumed": true`. The
last second of caller audio is kept while (re)connecting and sent right after `start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from app.backends.base import (
    AudioIn,
    BackendError,
    BackendEvent,
    CallContext,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
)
from app.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 10.0
CONNECT_TIMEOUT_S = 10.0
PENDING_AUDIO_FRAMES = 50


def create_backend(settings: Settings) -> WebSocketBackend:
    if not settings.backend_ws_url:
        raise BackendError("BACKEND_WS_URL is not set", fatal=True)
    return WebSocketBackend(settings.backend_ws_url, sample_rate=settings.backend_ws_sample_rate)


class WebSocketBackend:
    """One downstream WebSocket per call, reconnected when it drops."""

    def __init__(self, url: str, *, sample_rate: int | None = None) -> None:
        self.url = url
        self._rate = sample_rate
        self._socket: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._call: CallContext | None = None
        self._output: MediaOutput | None = None
        self._pending: deque[bytes] = deque()
        self.connects = 0
        self.discarded_frames = 0

    @property
    def sample_rate(self) -> int | None:
        return self._rate

    async def open(self, call: CallContext, output: MediaOutput) -> None:
        self._call = call
        self._output = output
        self._task = asyncio.create_task(self._run())

    async def receive(self, event: InboundEvent) -> None:
        socket = self._socket
        if socket is None:
            self._keep(event)
            return
        try:
            if type(event) is AudioIn:
                await socket.send(event.pcm)
            elif isinstance(event, DtmfIn):
                await socket.send(
                    json.dumps(
                        {"type": "dtmf", "digit": event.digit, "participant": event.participant_id}
                    )
                )
            elif isinstance(event, TranscriptIn):
                await socket.send(
                    json.dumps(
                        {
                            "type": "transcript",
                            "text": event.text,
                            "final": event.final,
                            "participant": event.participant_id,
                        }
                    )
                )
        except ConnectionClosed:
            # The reader notices too and reconnects; this frame is lost with the connection.
            self.discarded_frames += 1

    def _keep(self, event: InboundEvent) -> None:
        # Downstream is away: keep the last second of audio to replay when it is back.
        if type(event) is AudioIn:
            if len(self._pending) == PENDING_AUDIO_FRAMES:
                self._pending.popleft()
                self.discarded_frames += 1
            self._pending.append(event.pcm)

    async def close(self) -> None:
        socket = self._socket
        if socket is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await socket.send(json.dumps({"type": "stop"}))
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = BACKOFF_INITIAL_S
        while True:
            try:
                async with connect(
                    self.url, open_timeout=CONNECT_TIMEOUT_S, max_size=2**22
                ) as socket:
                    await socket.send(json.dumps(self._start_message()))
                    self.connects += 1
                    while self._pending:
                        await socket.send(self._pending.popleft())
                    self._socket = socket
                    delay = BACKOFF_INITIAL_S
                    await self._read(socket)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                self._report_drop(exc)
            except InvalidURI as exc:
                self._fail(f"BACKEND_WS_URL is not a WebSocket URL: {exc}")
                return
            finally:
                self._socket = None
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _read(self, socket: ClientConnection) -> None:
        output = self._output
        assert output is not None
        async for message in socket:
            if isinstance(message, bytes):
                await output.play(message)
                continue
            try:
                control = json.loads(message)
            except ValueError:
                log.warning("downstream sent a text frame that is not JSON")
                continue
            if not isinstance(control, dict):
                continue
            kind = control.get("type")
            if kind == "stop_audio":
                output.stop_audio()
            elif kind == "end":
                output.end(str(control.get("reason", "downstream ended the session")))
            elif kind == "transcript" and isinstance(control.get("text"), str):
                output.report(
                    BackendEvent("transcript", {"role": "agent", "text": control["text"]})
                )
        raise ConnectionClosed(None, None)

    def _start_message(self) -> dict[str, Any]:
        call = self._call
        assert call is not None
        return {
            "type": "start",
            "resumed": self.connects > 0,
            "callConnectionId": call.call_connection_id,
            "correlationId": call.correlation_id,
            "caller": call.caller,
            "callee": call.callee,
            "sampleRate": self._rate or call.stream.sample_rate,
            "channels": 1,
            "encoding": "pcm_s16le",
            "audioChannel": call.channel,
        }

    def _report_drop(self, exc: BaseException) -> None:
        log.warning("downstream websocket unavailable (%s); reconnecting", type(exc).__name__)
        if self._output is not None:
            self._output.report(
                BackendEvent("reconnect", {"backend": "websocket", "error": type(exc).__name__})
            )

    def _fail(self, reason: str) -> None:
        log.error(reason)
        if self._output is not None:
            self._output.report(BackendEvent("error", {"message": reason, "fatal": True}))
            self._output.end(reason)
