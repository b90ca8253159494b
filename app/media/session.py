"""One call's media socket: ACS frames in, backend in the middle, paced audio out.

The path of one frame, in order:

    ACS --text frame--> MediaSession._read          (raw ASGI receive)
        InboundStream.receive                        (app.media.inbound: the rules, sans I/O)
        MediaSession._to_backend_rate                (console level meter, inbound resampling)
        BackendFeed.deliver                          (app.media.feed: on the spot, or queued)
        Backend.receive                              (app.backends.*)
    backend --pcm--> SessionOutput.play              (app.media.output: outbound resampling)
        OutboundPacer.play                           (app.media.pacing: 20 ms frames, on time)
        OutboundSocket.send                          (app.media.outbound_socket: ACS JSON)
    --> ACS

Tasks per call, owned by one TaskGroup: the reader (never waits for the backend), the feeder
(finishes backend calls that had to wait, then queued events), the pacer (frames ahead of
schedule) and the watchdog (idle, duration cap, flushes, end requests). Whatever ends the
session, the backend is closed exactly once and the call's state records how it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.backends.base import (
    AudioIn,
    Backend,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    StreamFormat,
    TranscriptIn,
)
from app.calls.store import CallStore, StoreUnavailable
from app.calls.write_behind import StateWriter
from app.media import session_record
from app.media.asgi_channels import raw_channels
from app.media.feed import BackendFeed
from app.media.inbound import (
    INVALID_UTF8,
    InboundStream,
    Opened,
    SessionEnd,
    Skipped,
    StreamEnded,
)
from app.media.inbound_queue import DropOldestQueue
from app.media.outbound_socket import OutboundSocket
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import AudioMetadata
from app.media.resample import Resampler, resampler
from app.media.stats import MediaStats
from app.media.watchdog import Watchdog
from app.observability.console_feed import EventHub
from app.observability.levels import LevelMeter
from app.observability.metrics import SessionMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

METRICS_FLUSH_INTERVAL_S = 1.0
STATE_FLUSH_INTERVAL_S = 2.0
BACKEND_CLOSE_TIMEOUT_S = 5.0
BACKEND_FAILED = 1011


@dataclass(frozen=True, slots=True)
class CallIdentity:
    """Which call a media socket belongs to, from its upgrade request."""

    call_connection_id: str
    correlation_id: str | None


@dataclass(slots=True)
class _Media:
    """What exists once AudioMetadata has announced the stream."""

    stream: StreamFormat
    backend: Backend
    pacer: OutboundPacer
    output: SessionOutput
    inbound_resamplers: dict[str | None, Resampler | None]


class _Ended(Exception):
    def __init__(self, end: SessionEnd) -> None:
        super().__init__(end.reason)
        self.end = end


class MediaSession:
    """Relays one ACS media WebSocket to one backend."""

    def __init__(
        self,
        websocket: WebSocket,
        call: CallIdentity,
        *,
        settings: Settings,
        store: CallStore,
        writer: StateWriter,
        backend_factory: Callable[[], Backend],
        actions: CallActions,
        metrics: SessionMetrics,
        events: EventHub,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.stats = MediaStats()
        self._ws = websocket
        self._receive, send = raw_channels(websocket)
        self._socket = OutboundSocket(send)
        self._settings = settings
        self._store = store
        # State writes go through the writer: they never block or fail the media path, even
        # while a shared store is unreachable (retried, they converge later).
        self._writer = writer
        self._metrics = metrics
        self._events = events
        self._level = LevelMeter()
        self._backend_factory = backend_factory
        self._actions = actions
        self._clock = clock
        self._inbound = InboundStream(settings.media_max_message_bytes, self.stats)
        self._queue: DropOldestQueue[InboundEvent] = DropOldestQueue(
            settings.media_inbound_queue_frames
        )
        self._feed = BackendFeed(self._queue, self._backend_failed)
        self._last_inbound = clock()
        self._watchdog = Watchdog(
            idle_s=settings.media_idle_timeout_s,
            max_s=settings.max_call_duration_s,
            clock=clock,
            last_inbound=lambda: self._last_inbound,
        )
        self._media: _Media | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._next_metrics = self._next_state = 0.0

    @property
    def output(self) -> SessionOutput | None:
        """The outbound side, once AudioMetadata has arrived."""
        return self._media.output if self._media is not None else None

    def tell(self, event: CallEventIn) -> bool:
        """Pass a call event to the backend, in order with its audio; False before it exists."""
        if self._media is None:
            return False
        self._feed.deliver(event)
        return True

    def end(self, reason: str, close_code: int = 1000) -> None:
        """Ask the session to end (from the backend, the registry or a control action)."""
        self._watchdog.request_end(SessionEnd(reason, close_code))

    async def run(self) -> SessionEnd:
        """Serve the socket until it ends; returns why."""
        self._writer.submit(
            self.call.call_connection_id,
            session_record.media_connected(self.call, self._settings.instance_id),
        )
        self._metrics.started()
        now = self._clock()
        self._next_metrics = now + METRICS_FLUSH_INTERVAL_S
        self._next_state = now + STATE_FLUSH_INTERVAL_S
        end = SessionEnd("ended", 1000)
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                group.create_task(self._read())
                group.create_task(self._feed.run())
                group.create_task(self._watch())
        except* _Ended as ended:
            end = _first_end(ended)
        finally:
            self._feed.close()
            await self._close_backend()
            await self._close_socket(end)
            self._sync_stats()
            self._writer.submit(
                self.call.call_connection_id,
                session_record.media_disconnected(self.call, self.stats, end.reason),
            )
            self._metrics.ended(self.stats)
        log.info(
            "media session ended: %s (in %d, out %d, malformed %d, dropped %d)",
            end.reason,
            self.stats.frames_in,
            self.stats.frames_out,
            self.stats.malformed,
            self.stats.dropped,
            extra=self._log_extra(),
        )
        return end

    # --- reader: ACS -> backend --------------------------------------------------------------
    async def _read(self) -> None:
        receive, inbound, feed = self._receive, self._inbound, self._feed
        while True:
            message = await receive()
            self._last_inbound = self._clock()
            try:
                item = inbound.receive(message)
            except StreamEnded as ended:
                if ended.end is INVALID_UTF8:
                    # uvicorn's own traceback for it is filtered out (app.observability.logging).
                    log.warning(
                        "media socket closed with 1007: a text frame was not valid UTF-8",
                        extra=self._log_extra(),
                    )
                raise _Ended(ended.end) from None
            if type(item) is AudioIn:
                if feed.deliver(self._to_backend_rate(item)):
                    self._dropped()
            elif type(item) is Skipped:
                self._malformed(item.reason)
            elif type(item) is Opened:
                self._start_media(item.metadata)
            elif isinstance(item, DtmfIn | TranscriptIn):
                feed.deliver(item)

    def _to_backend_rate(self, frame: AudioIn) -> AudioIn:
        """Meter the frame for the console and resample it to the backend's rate."""
        pcm = frame.pcm
        if self._events.subscribers:
            level = self._level.measure(pcm)
            if level is not None:
                self._events.publish_level(self.call.call_connection_id, level)
        media = self._media
        assert media is not None  # InboundStream passes audio only while streaming
        converters = media.inbound_resamplers
        participant = frame.participant_id
        if participant in converters:
            converter = converters[participant]
        else:
            rate = media.stream.sample_rate
            converter = converters[participant] = resampler(rate, media.backend.sample_rate or rate)
        if converter is None:
            return frame
        return AudioIn(converter.process(pcm), participant, frame.silent, frame.timestamp)

    def _start_media(self, metadata: AudioMetadata) -> None:
        """Build the backend and the outbound side; the feed opens the backend first."""
        stream = StreamFormat(sample_rate=metadata.sample_rate)
        try:
            backend = self._backend_factory()
        except Exception as exc:
            self._backend_failed(exc)
            raise _Ended(SessionEnd("backend could not be created", BACKEND_FAILED)) from exc
        pacer = OutboundPacer(
            stream.frame_bytes,
            lead_ms=self._settings.media_outbound_lead_ms,
            buffer_ms=self._settings.media_outbound_buffer_ms,
            clock=self._clock,
        )
        output = SessionOutput(
            pacer,
            resampler(backend.sample_rate or stream.sample_rate, stream.sample_rate),
            enabled=self._settings.media_bidirectional,
            on_event=self._on_backend_event,
            on_end=lambda reason: self.end(f"backend ended the session: {reason}", BACKEND_FAILED),
        )
        self._media = media = _Media(stream, backend, pacer, output, {})
        # The backend is opened first; events that arrive meanwhile queue behind its open.
        self._feed.start(backend.receive, self._open_backend(media, metadata))

    async def _open_backend(self, media: _Media, metadata: AudioMetadata) -> None:
        context = CallContext(
            call_connection_id=self.call.call_connection_id,
            correlation_id=self.call.correlation_id,
            stream=media.stream,
            channel=self._settings.media_audio_channel,
            bidirectional=self._settings.media_bidirectional,
            subscription_id=metadata.subscription_id,
        )
        try:
            record = await self._store.get(self.call.call_connection_id)
        except StoreUnavailable:
            record = None  # the call goes on without caller/callee in the backend's context
        if record is not None:
            context = dataclasses.replace(context, caller=record.caller, callee=record.callee)
        await media.backend.open(context, media.output, self._actions)
        assert self._task_group is not None
        self._task_group.create_task(self._send_paced(media.pacer))

    def _backend_failed(self, exc: Exception) -> None:
        """Count a backend failure; raises _Ended when it ends the media session.

        Whatever a backend raises (a plug-in's bug included) lands here, never in the ASGI
        server; cancellation is not an Exception and passes through.
        """
        self.stats.backend_errors += 1
        if isinstance(exc, BackendError):
            log.warning("backend error: %s", exc, extra=self._log_extra())
            if exc.fatal:
                raise _Ended(SessionEnd(f"backend failed: {exc}", BACKEND_FAILED)) from exc
            return
        # A backend bug or a broken resource (disk, network): end the media session cleanly
        # (1011) rather than let the error escape; the ACS call itself stays up.
        log.exception("backend raised %s", type(exc).__name__, extra=self._log_extra())
        raise _Ended(SessionEnd(f"backend failed: {type(exc).__name__}", BACKEND_FAILED)) from exc

    def _on_backend_event(self, event: BackendEvent) -> None:
        self.stats.record_backend_event(event)
        if event.kind == "error":
            self.stats.backend_errors += 1
            log.warning("backend reported: %s", dict(event.data), extra=self._log_extra())
        elif event.kind == "reconnect":
            self._metrics.backend_reconnected()
        elif event.kind == "transcript":
            log.info(
                "transcript %s: %s",
                event.data.get("role"),
                event.data.get("text"),
                extra=self._log_extra(),
            )
        elif event.kind == "tool_call":
            data = event.data
            outcome = str(data.get("outcome", "error"))
            self._metrics.tool_called(str(data.get("tool", "unknown")), outcome)
            log.info(
                "tool call %s: %s in %s ms",
                data.get("name"),
                outcome,
                data.get("duration_ms"),
                extra=self._log_extra(),
            )

    # --- pacer: outbound frames -> ACS ---------------------------------------------------
    async def _send_paced(self, pacer: OutboundPacer) -> None:
        try:
            await pacer.run(self._socket.send)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _Ended(SessionEnd("media socket closed while sending", None)) from exc

    # --- watchdog -----------------------------------------------------------------------------
    async def _watch(self) -> None:
        raise _Ended(await self._watchdog.run(self._tick))

    def _tick(self, now: float) -> None:
        self._sync_stats()
        if now >= self._next_metrics:
            self._next_metrics = now + METRICS_FLUSH_INTERVAL_S
            media = self._media
            self._metrics.flush(self.stats, media.pacer.queued_frames if media else None)
        if now >= self._next_state:
            self._next_state = now + STATE_FLUSH_INTERVAL_S
            self._writer.submit(
                self.call.call_connection_id,
                session_record.media_progress(self.call, self.stats),
                supersedes="media_progress",
            )

    def _sync_stats(self) -> None:
        media = self._media
        if media is not None:
            self.stats.frames_out = media.pacer.frames_sent

    # --- logging of what the rules decided ------------------------------------------------------
    def _malformed(self, why: str) -> None:
        count = self.stats.malformed
        if count <= 10 or count % 500 == 0:
            log.warning(
                "skipped malformed media frame (%d so far): %s",
                count,
                why,
                extra=self._log_extra(),
            )

    def _dropped(self) -> None:
        self.stats.dropped = dropped = self._queue.dropped
        if dropped == 1 or dropped % 500 == 0:
            log.warning(
                "backend slower than real time: %d inbound frames dropped",
                dropped,
                extra=self._log_extra(),
            )

    # --- teardown -------------------------------------------------------------------------------
    async def _close_backend(self) -> None:
        media = self._media
        if media is None:
            return
        try:
            await asyncio.wait_for(media.backend.close(), BACKEND_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("backend close timed out", extra=self._log_extra())
        except Exception:
            log.exception("backend close failed", extra=self._log_extra())

    async def _close_socket(self, end: SessionEnd) -> None:
        if end.close_code is None:
            return
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self._ws.close(code=end.close_code, reason=end.reason[:120])

    def _log_extra(self) -> dict[str, str | None]:
        return {
            "call_connection_id": self.call.call_connection_id,
            "correlation_id": self.call.correlation_id,
        }


def _first_end(group: BaseExceptionGroup[_Ended]) -> SessionEnd:
    for exc in group.exceptions:
        if isinstance(exc, _Ended):
            return exc.end
        if isinstance(exc, BaseExceptionGroup):
            return _first_end(exc)
    return SessionEnd("ended", 1000)
