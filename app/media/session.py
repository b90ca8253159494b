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
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn

from starlette.websockets import WebSocketDisconnect

from app.backends.base import (
    AudioIn,
    CallContext,
    DtmfIn,
    StreamFormat,
    TranscriptIn,
)
from app.calls.store import StoreUnavailable
from app.media import session_record
from app.media.backend_health import HealthChange, HealthTracker
from app.media.inbound import (
    INVALID_UTF8,
    InboundStream,
    Opened,
    SessionEnd,
    Skipped,
    StreamEnded,
)
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import AudioMetadata
from app.media.resample import resampler
from app.media.resume import (
    STREAM_RESUMED,
    CallMedia,
    CallOutput,
)
from app.media.session_base import (
    BACKEND_FAILED,
    METRICS_FLUSH_INTERVAL_S,
    SHUTTING_DOWN,
    STATE_FLUSH_INTERVAL_S,
    CallIdentity,
    SessionEnded,
    SessionState,
    SocketMedia,
    first_end,
)
from app.media.session_health import SessionHealth
from app.media.session_parking import SessionParking

log = logging.getLogger(__name__)


__all__ = ["CallIdentity", "MediaSession", "SessionState"]


class MediaSession(SessionParking, SessionHealth):
    """Relays one ACS media WebSocket to one backend."""

    def shut_down(self) -> None:
        """This instance stops: end the session, and the call with it (no dead air)."""
        self._shutting_down = True
        self.end("server shutting down", SHUTTING_DOWN)

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
        except* SessionEnded as ended:
            end = first_end(ended)
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
            end = await self._no_dead_air(end)
            await self._close_socket(end)
        if self.state is not SessionState.HANDED_OVER:
            self._health_closed()
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
        self._metrics.latency(*self.stats.latency.drain())
        self._metrics.ended(self.stats)
        return end

    # --- reader: ACS -> backend --------------------------------------------------------------

    async def _read(self) -> None:
        receive, inbound = self._receive, self._inbound
        feed = (await self._read_metadata()).feed
        while True:
            message = await receive()
            self._last_inbound = arrived = self._clock()
            try:
                item = inbound.receive(message)
            except StreamEnded as ended:
                self._stream_ended(ended)
            if type(item) is AudioIn:
                if feed.deliver(self._to_backend_rate(item), arrived):
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
        raise SessionEnded(ended.end) from None

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
            tracker = HealthTracker(self._settings.media_backend, self._clock)
            self._health_changed(tracker.failed(f"could not be created: {exc}"))
            self._backend_failed(exc)
            raise SessionEnded(SessionEnd("backend could not be created", BACKEND_FAILED)) from exc
        health = HealthTracker(self._settings.media_backend, self._clock)
        self._call = call = CallMedia(backend, stream, self._queue, self.stats, health)
        self._health_changed(HealthChange(health.health, None))  # `connecting`, on the record
        call.on_error = self._backend_failed
        media = self._attach(call, stream)
        # The backend is opened first; events that arrive meanwhile queue behind its open.
        call.feed.start(backend.receive, self._open_backend(media, metadata))
        return call

    def _resume_media(self, call: CallMedia, stream: StreamFormat) -> CallMedia:
        """A re-established stream: the same backend, this socket's pacer, fresh resamplers."""
        call.inbound_resamplers.clear()  # rebuilt for this socket's format on its first frame
        media = self._attach(call, stream)
        self._spawn(self._send_paced(media.pacer))
        call.feed.deliver(STREAM_RESUMED)
        log.info("media stream resumed with the call's backend", extra=self._log_extra())
        return call

    def _attach(self, call: CallMedia, stream: StreamFormat) -> SocketMedia:
        """This socket's outbound side for the call's backend; its feeder runs in this session."""
        self._spawn(call.feed.run())
        pacer = OutboundPacer(
            stream.frame_bytes,
            lead_ms=self._settings.media_outbound_lead_ms,
            buffer_ms=self._settings.media_outbound_buffer_ms,
            clock=self._clock,
            on_first_frame=call.stats.latency.outbound,
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
        self._media = media = SocketMedia(stream, call, pacer, output, self.stats.frames_out)
        return media

    async def _open_backend(self, media: SocketMedia, metadata: AudioMetadata) -> None:
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
        self._spawn(self._send_paced(media.pacer))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` in the session's task group; dropped once the session is ending (a socket
        that closed while the backend was opening), never an error of the backend's."""
        assert self._task_group is not None
        try:
            self._task_group.create_task(job)
        except RuntimeError:
            job.close()

    # --- pacer and watchdog ------------------------------------------------------------------

    async def _send_paced(self, pacer: OutboundPacer) -> None:
        try:
            await pacer.run(self._socket.send)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            closed = SessionEnd("media socket closed while sending", None, dropped=True)
            raise SessionEnded(closed) from exc

    async def _watch(self) -> None:
        raise SessionEnded(await self._watchdog.run(self._tick))

    def _tick(self, now: float) -> None:
        self._sync_stats()
        self._check_unavailable(now)
        if now >= self._next_metrics:
            self._next_metrics = now + METRICS_FLUSH_INTERVAL_S
            media = self._media
            self._metrics.flush(self.stats, media.pacer.queued_frames if media else None)
            self._metrics.latency(*self.stats.latency.drain())
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
