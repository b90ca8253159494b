"""One call's media socket: ACS frames in, backend in the middle, paced audio out.

Tasks per call, owned by one TaskGroup: the reader (never blocks: it builds the backend on
AudioMetadata, and queues events in a bounded queue that drops its oldest audio when the
backend falls behind), the feeder (opens the backend and hands it queued events in order) and
the pacer (sends outbound frames on time). A watchdog ends the session on idle, on the duration
cap, or when asked. Whatever ends it, the backend is closed exactly once and the call's state
records how it went.

The hot path, measured in `bench/`: when nothing is queued and the backend can take a frame
without waiting (`ImmediateReceiver`), the reader hands it over itself, and a frame that is due
goes out from there too (see `pacing`), so an echoed frame costs one task wake-up, not three.
Frames are read and sent on the raw ASGI channels (`app.media.asgi_channels`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.backends.base import (
    AudioIn,
    Backend,
    BackendError,
    BackendEvent,
    CallContext,
    ImmediateReceiver,
    InboundEvent,
    StreamFormat,
)
from app.calls.store import CallStore, StoreUnavailable
from app.calls.write_behind import StateWriter
from app.media import session_record
from app.media.asgi_channels import raw_channels
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import (
    AudioFrame,
    AudioMetadata,
    DtmfTone,
    MalformedMessage,
    Transcription,
    parse_message,
)
from app.media.resample import Resampler, resampler
from app.media.stats import MediaStats
from app.media.waits import wait_for_event
from app.observability.console_feed import EventHub
from app.observability.levels import LevelMeter
from app.observability.metrics import SessionMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.5  # shorter only for idle/duration limits under a second
METRICS_FLUSH_INTERVAL_S = 1.0
STATE_FLUSH_INTERVAL_S = 2.0
BACKEND_CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CallIdentity:
    """Which call a media socket belongs to, from its upgrade request."""

    call_connection_id: str
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """Why a session ended and how to close the socket (None: the peer already closed)."""

    reason: str
    close_code: int | None


@dataclass(frozen=True, slots=True)
class _OpenBackend:
    metadata: AudioMetadata


_QueueItem = AudioIn | DtmfTone | Transcription | _OpenBackend


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
        metrics: SessionMetrics,
        events: EventHub,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.stats = MediaStats()
        self._ws = websocket
        self._receive, self._send = raw_channels(websocket)
        self._settings = settings
        self._store = store
        # State writes go through the writer: they never block or fail the media path, even
        # while a shared store is unreachable (retried, they converge later).
        self._writer = writer
        self._metrics = metrics
        self._events = events
        self._level = LevelMeter()
        self._backend_factory = backend_factory
        self._clock = clock
        self._queue: deque[_QueueItem] = deque()
        self._queue_limit = settings.media_inbound_queue_frames
        self._queued = asyncio.Event()
        self._feeding = False
        self._take_nowait: Callable[[InboundEvent], bool] | None = None
        self._end_requested: SessionEnd | None = None
        self._end_event = asyncio.Event()
        self._last_inbound = clock()
        self._backend: Backend | None = None
        self._pacer: OutboundPacer | None = None
        self._output: SessionOutput | None = None
        self._inbound_resamplers: dict[str | None, Resampler | None] = {}
        self._stream: StreamFormat | None = None
        self._task_group: asyncio.TaskGroup | None = None

    @property
    def output(self) -> SessionOutput | None:
        return self._output

    def end(self, reason: str, close_code: int = 1000) -> None:
        """Ask the session to end (from the backend, the registry or a control action)."""
        if self._end_requested is None:
            self._end_requested = SessionEnd(reason, close_code)
        self._end_event.set()

    async def run(self) -> SessionEnd:
        """Serve the socket until it ends; returns why."""
        self._writer.submit(
            self.call.call_connection_id,
            session_record.media_connected(self, self._settings.instance_id),
        )
        self._metrics.started()
        end = SessionEnd("ended", 1000)
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                group.create_task(self._read())
                group.create_task(self._feed())
                group.create_task(self._watch())
        except* _Ended as ended:
            end = _first_end(ended)
        finally:
            await self._close_backend()
            await self._close_socket(end)
            self._sync_stats()
            self._writer.submit(
                self.call.call_connection_id, session_record.media_disconnected(self, end.reason)
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

    # --- reader: ACS -> backend (directly when it can take the frame at once) or queue ----------
    async def _read(self) -> None:
        receive = self._receive
        limit = self._settings.media_max_message_bytes
        queue, stats = self._queue, self.stats
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                raise _Ended(self._socket_closed(message.get("code")))
            self._last_inbound = self._clock()
            text = message.get("text")
            if text is None:
                # The limit is ours to enforce: `uvicorn app.main:app` accepts up to 16 MiB.
                if len(message.get("bytes") or b"") > limit:
                    raise _Ended(SessionEnd("message too big", 1009))
                self._malformed("binary frame")
                continue
            # The limit is in bytes: ASCII text (ACS's JSON; `isascii` is O(1)) is one byte a char.
            if len(text) > limit or (not text.isascii() and len(text.encode()) > limit):
                raise _Ended(SessionEnd("message too big", 1009))
            try:
                parsed = parse_message(text)
            except MalformedMessage as exc:
                self._malformed(str(exc))
                continue
            if type(parsed) is AudioFrame:
                if self._backend is None:
                    self._malformed("AudioData before AudioMetadata")
                    continue
                stats.frames_in += 1
                event = self._prepare_audio(parsed)
                take = self._take_nowait
                if take is not None and not queue and not self._feeding:
                    try:
                        if take(event):
                            continue
                    except Exception as exc:
                        self._backend_failed(exc)
                        continue
                self._enqueue(event)
            elif isinstance(parsed, AudioMetadata):
                self._on_metadata(parsed)
            elif isinstance(parsed, DtmfTone):
                stats.dtmf += parsed.digit
                if self._backend is not None:
                    self._enqueue(parsed)
            elif isinstance(parsed, Transcription):
                if parsed.final and parsed.text:
                    stats.add_transcript(parsed.participant_id or "caller", parsed.text)
                if self._backend is not None:
                    self._enqueue(parsed)

    def _socket_closed(self, code: int | None) -> SessionEnd:
        if code == 1007:
            # uvicorn closes on a text frame that is not UTF-8 before the app sees it (its own
            # traceback is filtered out in `app.observability.logging`): one line per socket.
            log.warning(
                "media socket closed with 1007: a text frame was not valid UTF-8",
                extra=self._log_extra(),
            )
            return SessionEnd("invalid UTF-8 in a text frame", None)
        return SessionEnd("ACS closed the media socket", None)

    def _enqueue(self, item: _QueueItem) -> None:
        if len(self._queue) >= self._queue_limit:
            self._drop_oldest()
        self._queue.append(item)
        self._queued.set()

    def _drop_oldest(self) -> None:
        dropped = self._queue.popleft()
        if type(dropped) is not AudioFrame and self._queue:
            # Keep control items (backend open, DTMF): drop the oldest audio instead.
            self._queue.popleft()
            self._queue.appendleft(dropped)
        self.stats.dropped += 1
        if self.stats.dropped == 1 or self.stats.dropped % 500 == 0:
            log.warning(
                "backend slower than real time: %d inbound frames dropped",
                self.stats.dropped,
                extra=self._log_extra(),
            )

    def _malformed(self, why: str) -> None:
        self.stats.malformed += 1
        if self.stats.malformed <= 10 or self.stats.malformed % 500 == 0:
            log.warning(
                "skipped malformed media frame (%d so far): %s",
                self.stats.malformed,
                why,
                extra=self._log_extra(),
            )

    def _prepare_audio(self, frame: AudioFrame) -> AudioIn:
        """Meter the frame for the console and resample it to the backend's rate."""
        pcm = frame.pcm
        if self._events.subscribers:
            level = self._level.measure(pcm)
            if level is not None:
                self._events.publish_level(self.call.call_connection_id, level)
        participant = frame.participant_id
        if participant in self._inbound_resamplers:
            converter = self._inbound_resamplers[participant]
        else:
            converter = self._new_inbound_resampler(participant)
        if converter is None:
            return frame
        return AudioIn(converter.process(pcm), participant, frame.silent, frame.timestamp)

    def _on_metadata(self, metadata: AudioMetadata) -> None:
        if self._stream is not None:
            if metadata.sample_rate != self._stream.sample_rate:
                self._malformed("AudioMetadata changed the sample rate mid-stream")
            return
        try:
            self._create_backend(metadata)
        except Exception as exc:
            self._backend_failed(exc)
            return
        self._enqueue(_OpenBackend(metadata))

    def _create_backend(self, metadata: AudioMetadata) -> None:
        """Build the backend and the outbound side now; the feeder opens the backend next."""
        stream = StreamFormat(sample_rate=metadata.sample_rate)
        self._stream = stream
        backend = self._backend_factory()
        backend_rate = backend.sample_rate or stream.sample_rate
        pacer = OutboundPacer(
            stream.frame_bytes,
            lead_ms=self._settings.media_outbound_lead_ms,
            buffer_ms=self._settings.media_outbound_buffer_ms,
            clock=self._clock,
        )
        self._pacer = pacer
        self._output = SessionOutput(
            pacer,
            resampler(backend_rate, stream.sample_rate),
            enabled=self._settings.media_bidirectional,
            on_event=self._on_backend_event,
            on_end=lambda reason: self.end(f"backend ended the session: {reason}", 1011),
        )
        self.stats.sample_rate = stream.sample_rate
        self._backend = backend

    # --- feeder: queue -> backend ---------------------------------------------------------
    async def _feed(self) -> None:
        queue, queued = self._queue, self._queued
        while True:
            if not queue:
                self._feeding = False
                queued.clear()
                await queued.wait()
                continue
            self._feeding = True
            item = queue.popleft()
            try:
                await self._dispatch(item)
            except Exception as exc:
                self._backend_failed(exc)

    async def _dispatch(self, item: _QueueItem) -> None:
        backend = self._backend
        assert backend is not None  # nothing is queued before the backend exists
        if isinstance(item, _OpenBackend):
            await self._open_backend(backend, item.metadata)
        else:
            await backend.receive(item)

    def _backend_failed(self, exc: Exception) -> None:
        """Count a backend failure; raises _Ended when it ends the media session.

        Whatever a backend raises (a plug-in's bug included) lands here, never in the ASGI
        server; cancellation is not an Exception and passes through.
        """
        self.stats.backend_errors += 1
        if isinstance(exc, BackendError):
            log.warning("backend error: %s", exc, extra=self._log_extra())
            if exc.fatal:
                raise _Ended(SessionEnd(f"backend failed: {exc}", 1011)) from exc
            return
        # A backend bug or a broken resource (disk, network): end the media session cleanly
        # (1011) rather than let the error escape; the ACS call itself stays up.
        log.exception("backend raised %s", type(exc).__name__, extra=self._log_extra())
        raise _Ended(SessionEnd(f"backend failed: {type(exc).__name__}", 1011)) from exc

    async def _open_backend(self, backend: Backend, metadata: AudioMetadata) -> None:
        assert self._stream is not None
        assert self._output is not None
        assert self._pacer is not None
        context = CallContext(
            call_connection_id=self.call.call_connection_id,
            correlation_id=self.call.correlation_id,
            stream=self._stream,
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
        await backend.open(context, self._output)
        assert self._task_group is not None
        self._task_group.create_task(self._send_paced(self._pacer))
        if isinstance(backend, ImmediateReceiver):
            # From now on the reader hands audio straight to the backend when nothing is queued.
            self._take_nowait = backend.receive_nowait

    def _new_inbound_resampler(self, participant: str | None) -> Resampler | None:
        backend = self._backend
        assert backend is not None
        assert self._stream is not None
        rate = self._stream.sample_rate
        converter = resampler(rate, backend.sample_rate or rate)
        self._inbound_resamplers[participant] = converter
        return converter

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

    # --- pacer: outbound frames -> ACS ---------------------------------------------------
    async def _send_paced(self, pacer: OutboundPacer) -> None:
        send = self._send
        try:
            # The server's own send, no coroutine of ours around it (one call less per frame).
            await pacer.run(lambda text: send({"type": "websocket.send", "text": text}))
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _Ended(SessionEnd("media socket closed while sending", None)) from exc

    # --- watchdog -----------------------------------------------------------------------------
    async def _watch(self) -> None:
        started = self._clock()
        idle_s = self._settings.media_idle_timeout_s
        max_s = self._settings.max_call_duration_s
        next_metrics = started + METRICS_FLUSH_INTERVAL_S
        next_state = started + STATE_FLUSH_INTERVAL_S
        interval = min(WATCH_INTERVAL_S, idle_s / 2, max_s / 2)
        while True:
            await self._wait_for_end(interval)
            if self._end_requested is not None:
                raise _Ended(self._end_requested)
            now = self._clock()
            if now - self._last_inbound > idle_s:
                raise _Ended(SessionEnd(f"no inbound audio for {idle_s:g} s", 1000))
            if now - started > max_s:
                raise _Ended(SessionEnd(f"call exceeded {max_s:g} s", 1000))
            self._sync_stats()
            if now >= next_metrics:
                next_metrics = now + METRICS_FLUSH_INTERVAL_S
                pacer = self._pacer
                self._metrics.flush(self.stats, pacer.queued_frames if pacer is not None else None)
            if now >= next_state:
                next_state = now + STATE_FLUSH_INTERVAL_S
                self._writer.submit(
                    self.call.call_connection_id,
                    session_record.media_progress(self),
                    supersedes="media_progress",
                )

    async def _wait_for_end(self, limit_s: float) -> None:
        if self._end_requested is None:
            self._end_event.clear()
            await wait_for_event(self._end_event, limit_s)

    def _sync_stats(self) -> None:
        pacer = self._pacer
        if pacer is not None:
            self.stats.frames_out = pacer.frames_sent

    # --- teardown -------------------------------------------------------------------------------
    async def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is None:
            return
        try:
            await asyncio.wait_for(backend.close(), BACKEND_CLOSE_TIMEOUT_S)
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
