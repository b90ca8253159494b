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

The backend and its feed are the call's (`app.media.resume.CallMedia`), not the socket's: when
ACS's socket drops while the call's media is on, the session parks them for
MEDIA_RESUME_WINDOW_S, and a new socket of the call takes them over (`hand_over`):

    RUNNING --peer gone, media on--> PARKED --new socket--> HANDED_OVER
       |                               |--window over, media stopped, end()--> ENDED
       +--any other end-----------------------------------------------------> ENDED
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

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
from app.media.resample import resampler
from app.media.resume import (
    STREAM_INTERRUPTED,
    STREAM_RESUMED,
    CallMedia,
    CallOutput,
    media_stopped,
    resumable,
)
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
HANDOVER_TIMEOUT_S = 5.0  # how long a new socket waits for the old one to let go
PARK_CHECK_INTERVAL_S = 0.25  # how often a parked call's record is read (media stopped?)
REPLACED = "replaced by a new media socket"


class SessionState(Enum):
    RUNNING = "running"
    PARKED = "parked"
    HANDED_OVER = "handed_over"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallIdentity:
    """Which call a media socket belongs to, from its upgrade request."""

    call_connection_id: str
    correlation_id: str | None


@dataclass(slots=True)
class _Media:
    """What exists once AudioMetadata has announced the stream (this socket's side)."""

    stream: StreamFormat
    call: CallMedia
    pacer: OutboundPacer
    output: SessionOutput
    frames_out_before: int  # sent by the call's earlier sockets


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
        previous: MediaSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.state = SessionState.RUNNING
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
        self._previous = previous  # the call's earlier socket, whose backend this one takes over
        self._call: CallMedia | None = None
        self._claimed = False  # a newer socket of the call asked for the backend
        self._handover: asyncio.Future[CallMedia | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._end_requested: SessionEnd | None = None
        self._wakeup = asyncio.Event()
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
        self._known = session_record.LastKnownRecord()  # the whole record, if the store loses it
        self._resets_seen = writer.resets
        self._lines_seen = 0

    @property
    def output(self) -> SessionOutput | None:
        """The outbound side, once AudioMetadata has arrived."""
        return self._media.output if self._media is not None else None

    def tell(self, event: CallEventIn) -> bool:
        """Pass a call event to the backend, in order with its audio; False before it exists."""
        if self._call is None or self.state is not SessionState.RUNNING:
            return False
        self._call.feed.deliver(event)
        return True

    def end(self, reason: str, close_code: int = 1000) -> None:
        """Ask the session to end (from the backend, the registry or a control action)."""
        end = SessionEnd(reason, close_code)
        if self._end_requested is None:
            self._end_requested = end
        self._watchdog.request_end(end)
        self._wakeup.set()

    def hand_over(self) -> asyncio.Future[CallMedia | None]:
        """A newer socket of the call claims the backend: this session lets go of it (ending
        its own socket if still open); the future gives it, or None when there is none to take."""
        if self._claimed or self.state is SessionState.HANDED_OVER:
            done: asyncio.Future[CallMedia | None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        self._claimed = True
        if self.state is SessionState.RUNNING:
            self.end(REPLACED, 1000)
        self._wakeup.set()
        return self._handover

    async def run(self) -> SessionEnd:
        """Serve the socket until it ends; returns why."""
        taken = await self._take_over()
        if taken is not None:
            self._call = taken
            self.stats = taken.stats
            self._queue = taken.queue
            self._inbound = InboundStream(self._settings.media_max_message_bytes, self.stats)
            taken.on_error = self._backend_failed
        self._writer.submit(
            self.call.call_connection_id,
            session_record.media_connected(self.call, self._settings.instance_id),
            on_stored=self._known.keep,
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
                group.create_task(self._watch())
        except* _Ended as ended:
            end = _first_end(ended)
        finally:
            end = await self._finish(end)
        if self.state is SessionState.HANDED_OVER:
            log.info(
                "media socket ended, its backend goes on: %s", end.reason, extra=self._log_extra()
            )
            return end
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

    async def _take_over(self) -> CallMedia | None:
        previous, self._previous = self._previous, None
        if previous is None:
            return None
        try:
            return await asyncio.wait_for(previous.hand_over(), HANDOVER_TIMEOUT_S)
        except TimeoutError:
            log.warning("the call's earlier media socket did not let go", extra=self._log_extra())
            return None

    async def _finish(self, end: SessionEnd) -> SessionEnd:
        """Park the call's backend for a new socket, or close it; write how the session ended."""
        call = self._call
        if call is not None and await self._parkable(end, call):
            await self._close_socket(end)
            end = await self._park(call, end)
        else:
            if call is not None:
                call.feed.close()
            await self._close_backend()
            await self._close_socket(end)
        if self.state is not SessionState.HANDED_OVER:
            self._sync_stats()
            self.state = SessionState.ENDED
            self._writer.submit(
                self.call.call_connection_id,
                session_record.media_disconnected(
                    self.call, self.stats, end.reason, self._known.record
                ),
            )
        if not self._handover.done():
            self._handover.set_result(None)
        self._metrics.ended(self.stats)
        return end

    async def _parkable(self, end: SessionEnd, call: CallMedia) -> bool:
        """Whether ACS may bring the stream back: the peer went without the media stopping."""
        if not call.opened:
            return False
        if self._claimed:
            return True
        window = self._settings.media_resume_window_s
        if window <= 0 or self._end_requested is not None:
            return False
        if end.close_code is not None or end is INVALID_UTF8:
            return False  # the app ended it: idle, duration cap, backend failure, too big
        try:
            record = await self._store.get(self.call.call_connection_id)
        except StoreUnavailable:
            return True  # unknown: the window bounds the wait
        return resumable(record)

    async def _park(self, call: CallMedia, end: SessionEnd) -> SessionEnd:
        """Keep the backend until a new socket takes it, or the window ends; returns why."""
        self._sync_stats()
        assert call.output is not None  # opened
        call.output.stop_audio()  # what the caller had not heard is dropped, not replayed later
        # The conversation so far goes to the shared state now: if the stream comes back on
        # another instance, its new backend starts from it.
        self._writer.submit(
            self.call.call_connection_id,
            session_record.media_progress(self.call, self.stats, self._known.record),
            supersedes="media_progress",
            on_stored=self._known.keep,
        )
        try:
            call.feed.deliver(STREAM_INTERRUPTED)  # queued behind earlier events, if any
        except _Ended as failed:
            call.feed.close()
            await self._close_backend()
            return failed.end
        self.state = SessionState.PARKED
        try:
            end = await self._await_new_socket(call, end)
        except asyncio.CancelledError:
            self.state = SessionState.ENDED
            call.feed.close()
            await self._close_backend()
            raise
        if self.state is SessionState.HANDED_OVER:
            return end
        self.state = SessionState.ENDED
        call.feed.close()
        await self._close_backend()
        return end

    async def _await_new_socket(self, call: CallMedia, end: SessionEnd) -> SessionEnd:
        """Parked: hand the backend over when claimed; else why it ends (window, stop, end())."""
        window = self._settings.media_resume_window_s
        log.info("media socket gone, backend parked for %g s", window, extra=self._log_extra())
        deadline = self._clock() + window
        while True:
            if self._claimed and not self._handover.cancelled():
                self.state = SessionState.HANDED_OVER
                self._handover.set_result(call)
                return end
            if self._end_requested is not None:
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                end = SessionEnd(f"media stream not re-established within {window:g} s", None)
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), min(remaining, PARK_CHECK_INTERVAL_S))
            if not self._wakeup.is_set() and await self._media_stopped():
                end = SessionEnd("media streaming stopped while the stream was away", None)
                break
        if self._end_requested is not None:
            end = SessionEnd(self._end_requested.reason, None)
        return end

    async def _media_stopped(self) -> bool:
        try:
            return media_stopped(await self._store.get(self.call.call_connection_id))
        except StoreUnavailable:
            return False

    # --- reader: ACS -> backend --------------------------------------------------------------
    async def _read(self) -> None:
        receive, inbound = self._receive, self._inbound
        feed = (await self._read_metadata()).feed
        while True:
            message = await receive()
            self._last_inbound = self._clock()
            try:
                item = inbound.receive(message)
            except StreamEnded as ended:
                self._stream_ended(ended)
            if type(item) is AudioIn:
                if feed.deliver(self._to_backend_rate(item)):
                    self._dropped()
            elif type(item) is Skipped:
                self._malformed(item.reason)
            elif isinstance(item, DtmfIn | TranscriptIn):
                feed.deliver(item)

    async def _read_metadata(self) -> CallMedia:
        """Skip what comes before AudioMetadata; then start (or resume) the call's media."""
        while True:
            message = await self._receive()
            self._last_inbound = self._clock()
            try:
                item = self._inbound.receive(message)
            except StreamEnded as ended:
                self._stream_ended(ended)
            if type(item) is Opened:
                return self._start_media(item.metadata)
            if type(item) is Skipped:
                self._malformed(item.reason)

    def _stream_ended(self, ended: StreamEnded) -> NoReturn:
        if ended.end is INVALID_UTF8:
            # uvicorn's own traceback for it is filtered out (app.observability.logging).
            log.warning(
                "media socket closed with 1007: a text frame was not valid UTF-8",
                extra=self._log_extra(),
            )
        raise _Ended(ended.end) from None

    def _to_backend_rate(self, frame: AudioIn) -> AudioIn:
        """Meter the frame for the console and resample it to the backend's rate."""
        pcm = frame.pcm
        if self._events.subscribers:
            level = self._level.measure(pcm)
            if level is not None:
                self._events.publish_level(self.call.call_connection_id, level)
        media = self._media
        assert media is not None  # InboundStream passes audio only while streaming
        call = media.call
        converters = call.inbound_resamplers
        participant = frame.participant_id
        if participant in converters:
            converter = converters[participant]
        else:
            rate = media.stream.sample_rate
            converter = converters[participant] = resampler(rate, call.backend_rate)
        if converter is None:
            return frame
        return AudioIn(converter.process(pcm), participant, frame.silent, frame.timestamp)

    def _start_media(self, metadata: AudioMetadata) -> CallMedia:
        """Build (or take over) the backend and build this socket's outbound side."""
        stream = StreamFormat(sample_rate=metadata.sample_rate)
        call = self._call
        if call is not None:
            return self._resume_media(call, stream)
        try:
            backend = self._backend_factory()
        except Exception as exc:
            self._backend_failed(exc)
            raise _Ended(SessionEnd("backend could not be created", BACKEND_FAILED)) from exc
        self._call = call = CallMedia(backend, stream, self._queue, self.stats)
        call.on_error = self._backend_failed
        media = self._attach(call, stream)
        # The backend is opened first; events that arrive meanwhile queue behind its open.
        call.feed.start(backend.receive, self._open_backend(media, metadata))
        return call

    def _resume_media(self, call: CallMedia, stream: StreamFormat) -> CallMedia:
        """A re-established stream: the same backend, this socket's pacer, fresh resamplers."""
        call.inbound_resamplers.clear()  # rebuilt for this socket's format on its first frame
        media = self._attach(call, stream)
        assert self._task_group is not None
        self._task_group.create_task(self._send_paced(media.pacer))
        call.feed.deliver(STREAM_RESUMED)
        log.info("media stream resumed with the call's backend", extra=self._log_extra())
        return call

    def _attach(self, call: CallMedia, stream: StreamFormat) -> _Media:
        """This socket's outbound side for the call's backend; its feeder runs in this session."""
        assert self._task_group is not None
        self._task_group.create_task(call.feed.run())
        pacer = OutboundPacer(
            stream.frame_bytes,
            lead_ms=self._settings.media_outbound_lead_ms,
            buffer_ms=self._settings.media_outbound_buffer_ms,
            clock=self._clock,
        )
        output = SessionOutput(
            pacer,
            resampler(call.backend_rate, stream.sample_rate),
            enabled=self._settings.media_bidirectional,
            on_event=self._on_backend_event,
            on_end=lambda reason: self.end(f"backend ended the session: {reason}", BACKEND_FAILED),
        )
        if call.output is None:
            call.output = CallOutput(output)
        else:
            call.output.attach(output)
        self._media = media = _Media(stream, call, pacer, output, self.stats.frames_out)
        return media

    async def _open_backend(self, media: _Media, metadata: AudioMetadata) -> None:
        context = CallContext(
            call_connection_id=self.call.call_connection_id,
            correlation_id=self.call.correlation_id,
            stream=media.call.stream,
            channel=self._settings.media_audio_channel,
            bidirectional=self._settings.media_bidirectional,
            subscription_id=metadata.subscription_id,
        )
        try:
            record = await self._store.get(self.call.call_connection_id)
        except StoreUnavailable:
            record = None  # the call goes on without caller/callee in the backend's context
        if record is not None:
            history = tuple((line.role, line.text) for line in record.transcript)
            context = dataclasses.replace(
                context, caller=record.caller, callee=record.callee, history=history
            )
        call = media.call
        assert call.output is not None
        await call.backend.open(context, call.output, self._actions)
        call.opened = True
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
        lost = self._writer.resets != self._resets_seen
        said = self.stats.lines != self._lines_seen
        if now >= self._next_state or lost or said:
            # The store lost its data: rewrite the call's whole record now, not in 2 s. A new
            # transcript line or tool call goes out at the next tick too: the console follows
            # the conversation as it happens.
            self._next_state = now + STATE_FLUSH_INTERVAL_S
            self._resets_seen = self._writer.resets
            self._lines_seen = self.stats.lines
            self._writer.submit(
                self.call.call_connection_id,
                session_record.media_progress(self.call, self.stats, self._known.record),
                supersedes="media_progress",
                on_stored=self._known.keep,
            )

    def _sync_stats(self) -> None:
        media = self._media
        if media is not None:
            self.stats.frames_out = media.frames_out_before + media.pacer.frames_sent

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
        call = self._call
        if call is None:
            return
        try:
            await asyncio.wait_for(call.backend.close(), BACKEND_CLOSE_TIMEOUT_S)
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
