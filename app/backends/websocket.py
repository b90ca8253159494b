"""The websocket backend: relays a call to a downstream service (format: docs/websocket-backend.md).

Binary frames carry PCM16 mono both ways; text frames carry JSON control messages (built and
parsed in `app.backends.websocket_messages`). If the downstream drops, the call stays up: a
reconnect loop retries with exponential backoff, then sends `start` again with
`"resumed": true`. The last second of caller audio (and the call events of the gap) is kept
while (re)connecting and sent right after `start`, between a `replay` and a `live` marker: that
audio is late, and a downstream that answers in real time skips it rather than stay behind for
the rest of the call.

The backend reports its link's health on the call (`MediaOutput.report`): "connected" each time
a connection is usable, "reconnect" (attempt, reason) each time it is not (a failed attempt,
the first one included, or a drop), "error" (fatal) when it gives up.

The downstream may act on the call (`hang_up`, `transfer`, `send_dtmf`). The reader only
parses a request and hands it, or the refusal of a malformed message, to the call's
`ActionQueue` (`app.backends.websocket_actions`), which performs and answers them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections import deque
from typing import Any

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from app.backends.base import (
    AudioIn,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
)
from app.backends.websocket_actions import ActionQueue
from app.backends.websocket_link import (
    NoRedirects,
    QuietLogger,
    address_of,
    closed_reason,
    connect_failure,
)
from app.backends.websocket_messages import (
    LIVE_MESSAGE,
    STOP_MESSAGE,
    AgentTranscript,
    EndSession,
    MalformedMessage,
    StopAudio,
    call_event_message,
    dtmf_key,
    dtmf_message,
    parse_control,
    replay_message,
    start_message,
    transcript_message,
)
from app.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 10.0
# The first attempt (at the call's start, after a drop) gets this long to open, each further one
# in a row twice the last, up to CONNECT_TIMEOUT_S: a silent downstream is reported within 2 s,
# and a slow one still gets connected in the end.
FIRST_CONNECT_TIMEOUT_S = 1.5
CONNECT_TIMEOUT_S = 10.0
GOODBYE_TIMEOUT_S = 2.0  # for `stop` and the closing handshake, when the call's media ends
PENDING_AUDIO_FRAMES = 50
PENDING_CALL_EVENTS = 20


class Link(enum.Enum):
    """The backend's side of the downstream connection."""

    CONNECTING = "connecting"  # no usable connection: caller audio is kept to replay
    OPEN = "open"  # `start` and the replay are sent: frames go straight to the socket
    CLOSED = "closed"  # `close` was called: never reconnect


def create_backend(settings: Settings) -> WebSocketBackend:
    if not settings.backend_ws_url:
        raise BackendError("BACKEND_WS_URL is not set", fatal=True)
    return WebSocketBackend(
        settings.backend_ws_url,
        sample_rate=settings.backend_ws_sample_rate,
        auth_token=settings.backend_ws_auth_token,
    )


class WebSocketBackend:
    """One downstream WebSocket per call, reconnected when it drops."""

    def __init__(
        self, url: str, *, sample_rate: int | None = None, auth_token: SecretStr | None = None
    ) -> None:
        self.url = url
        self._rate = sample_rate
        self._auth_token = auth_token if auth_token and auth_token.get_secret_value() else None
        self._address = address_of(url)
        self._link = Link.CONNECTING
        self._socket: ClientConnection | None = None  # set exactly while the link is OPEN
        self._task: asyncio.Task[None] | None = None
        self._call: CallContext | None = None
        self._output: MediaOutput | None = None
        self._requests: ActionQueue | None = None
        self._pending: deque[bytes] = deque()
        self._pending_events: deque[str] = deque(maxlen=PENDING_CALL_EVENTS)
        self.connects = 0
        self.discarded_frames = 0
        self.replayed_frames = 0

    @property
    def sample_rate(self) -> int | None:
        return self._rate

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        # Connecting is left to the background: a downstream that is down or silent must not
        # hold up the call, whose audio is kept meanwhile.
        self._call = call
        self._output = output
        self._requests = ActionQueue(actions)
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
                key = dtmf_key(event.digit)
                if key is None:
                    log.warning("DTMF tone %r names no key; not passed on", event.digit)
                else:
                    await socket.send(dtmf_message(event, key))
            elif isinstance(event, TranscriptIn):
                await socket.send(transcript_message(event))
            elif isinstance(event, CallEventIn):
                await socket.send(call_event_message(event))
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
        elif isinstance(event, CallEventIn):
            self._pending_events.append(call_event_message(event))

    async def close(self) -> None:
        self._link = Link.CLOSED
        socket = self._socket
        said_stop = False
        if socket is not None:
            with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
                async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                    await socket.send(STOP_MESSAGE)
                    said_stop = True
        if self._requests is not None:
            # An action asked for just before the media ended (a transfer, say) still happens,
            # and its answer follows `stop` while the connection lasts.
            await self._requests.close()
        if socket is not None:
            if said_stop:
                await _goodbye(socket)
            else:
                socket.transport.abort()  # it took no `stop`: it would take no close frame either
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # --- the connection's life ------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._keep_connected()
        except Exception as exc:
            # The edge of the backend's task: a bug ends the media session visibly, not silently.
            log.exception("websocket backend crashed")
            self._fail(f"internal error: {exc!r}")

    async def _keep_connected(self) -> None:
        failures = 0  # times in a row the downstream was found unavailable (a drop included)
        tried = 0  # connect attempts since the call's start or the last usable connection
        while self._link is not Link.CLOSED:
            if failures:
                delay = min(BACKOFF_INITIAL_S * 2 ** (failures - 1), BACKOFF_MAX_S)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            timeout = min(FIRST_CONNECT_TIMEOUT_S * 2**tried, CONNECT_TIMEOUT_S)
            tried += 1
            try:
                socket = await self._connect(timeout)
            except InvalidURI as exc:
                self._fail(f"BACKEND_WS_URL is not a WebSocket URL: {exc.msg}")
                return
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                failures += 1
                self._report_unavailable(failures, connect_failure(exc, self._address, timeout))
                continue
            try:
                reason = await self._serve(socket)
            except ConnectionClosed as exc:
                reason = closed_reason(exc.rcvd, self._address)
            finally:
                self._socket = None
                if self._link is Link.OPEN:
                    self._link = Link.CONNECTING
                await _goodbye(socket)  # also when cancelled before the link was open
            if self._link is not Link.CLOSED:
                failures, tried = 1, 0
                self._report_unavailable(failures, reason)

    async def _connect(self, open_timeout_s: float) -> ClientConnection:
        headers: dict[str, str] = {}
        options: dict[str, Any] = {}
        if self._auth_token is not None:
            headers["Authorization"] = f"Bearer {self._auth_token.get_secret_value()}"
            # websockets logs every handshake header at DEBUG, this one included.
            options["logger"] = QuietLogger(logging.getLogger("websockets.client"))
        return await NoRedirects(
            self.url,
            additional_headers=headers,
            open_timeout=open_timeout_s,
            max_size=2**22,
            **options,
        )

    async def _serve(self, socket: ClientConnection) -> str:
        """Start the call on `socket`, then relay until it closes; returns how it closed."""
        call = self._call
        assert call is not None
        await socket.send(
            start_message(call, self._rate or call.stream.sample_rate, resumed=self.connects > 0)
        )
        self.connects += 1
        await self._replay(socket)
        if self._link is Link.CLOSED:
            return "closed by the bridge"
        self._socket = socket
        self._link = Link.OPEN
        self._report(BackendEvent("connected", {"backend": "websocket"}))
        await self._read(socket)
        return closed_reason(socket.protocol.close_rcvd, self._address)

    async def _replay(self, socket: ClientConnection) -> None:
        """Send what was kept while away: call events, then the audio, marked as replayed."""
        # Until both are empty (more may be kept while these are sent): nothing is left behind
        # once the socket is shared, and each block's `ms` counts exactly the frames it holds.
        while True:
            while self._pending_events:
                await socket.send(self._pending_events.popleft())
            if not self._pending:
                return
            block = list(self._pending)
            self._pending.clear()
            self.replayed_frames += len(block)
            await socket.send(replay_message(block, self._bytes_per_ms()))
            for frame in block:
                await socket.send(frame)
            await socket.send(LIVE_MESSAGE)

    async def _read(self, socket: ClientConnection) -> None:
        output, requests = self._output, self._requests
        assert output is not None
        assert requests is not None
        async for message in socket:
            if isinstance(message, bytes):
                await output.play(message)
                continue
            try:
                control = parse_control(message)
            except MalformedMessage as exc:
                log.warning("downstream sent a malformed message: %s", exc.message)
                await requests.refuse(exc, socket)
                continue
            if isinstance(control, StopAudio):
                output.stop_audio()
            elif isinstance(control, EndSession):
                output.end(control.reason)
            elif isinstance(control, AgentTranscript):
                output.report(BackendEvent("transcript", {"role": "agent", "text": control.text}))
            else:
                await requests.submit(control, socket)

    def _bytes_per_ms(self) -> int:
        call = self._call
        assert call is not None
        return (self._rate or call.stream.sample_rate) * 2 // 1000

    # --- health, reported on the call -----------------------------------------------------------
    def _report_unavailable(self, attempt: int, reason: str) -> None:
        log.warning("downstream websocket unavailable (attempt %d): %s", attempt, reason)
        data = {"backend": "websocket", "attempt": attempt, "reason": reason}
        self._report(BackendEvent("reconnect", data))

    def _fail(self, reason: str) -> None:
        log.error(reason)
        self._report(
            BackendEvent("error", {"backend": "websocket", "message": reason, "fatal": True})
        )
        if self._output is not None:
            self._output.end(reason)

    def _report(self, event: BackendEvent) -> None:
        if self._output is not None:
            self._output.report(event)


async def _goodbye(socket: ClientConnection) -> None:
    """Close `socket` with 1000 within GOODBYE_TIMEOUT_S, else drop it; a no-op once closed."""
    if socket.state is State.CLOSED:
        return
    try:
        async with asyncio.timeout(GOODBYE_TIMEOUT_S):
            await socket.close(1000, "call ended")
    except TimeoutError:
        # A downstream that stopped reading cannot take the close frame: waiting for room to
        # send it is not bounded by the close_timeout.
        socket.transport.abort()
    except (ConnectionClosed, OSError):
        pass
