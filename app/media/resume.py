"""What of a call's media outlives one ACS socket, so a re-established stream can resume it.

When ACS's socket drops while the call's media is still on, the session parks its `CallMedia`
(the backend, its feed, the per-call counters) for MEDIA_RESUME_WINDOW_S; a new socket of the
same call takes it over. The backend keeps one `CallOutput` for the whole call, which plays
through whichever socket's `SessionOutput` is attached:

    socket 1: MediaSession --attach--> CallOutput <--play-- Backend
    socket 2: MediaSession --attach--/                (same backend, same conversation)

Only a stream that dropped abnormally (a TCP reset, 1006) is parked, and `resumable` reads the
call's record: a stream whose media was stopped (a stop request, MediaStreamingStopped or
Failed) or whose call is ending is never parked. Media the record does not show as on yet
(MediaStreamingStarted not folded in) does not stop it: the socket's own AudioMetadata and
AudioData proved the media was on.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from app.backends.base import Backend, BackendEvent, CallEventIn, InboundEvent, StreamFormat
from app.calls.models import CallRecord, ConnectionState, MediaState
from app.media.backend_health import HealthTracker
from app.media.feed import BackendFeed
from app.media.inbound_queue import DropOldestQueue
from app.media.output import SessionOutput
from app.media.resample import Resampler
from app.media.stats import MediaStats

STREAM_INTERRUPTED = CallEventIn(name="MediaStreamInterrupted")
STREAM_RESUMED = CallEventIn(name="MediaStreamResumed")

_STOPPED = (MediaState.STOPPING, MediaState.STOPPED, MediaState.FAILED)
_CALL_UP = (ConnectionState.CONNECTING, ConnectionState.CONNECTED)


def resumable(record: CallRecord | None) -> bool:
    """Whether ACS may re-establish the call's stream: nothing stopped its media, the call is
    up (the stream itself is the proof that media was on)."""
    return (
        record is not None
        and record.media_state not in _STOPPED
        and record.connection_state in _CALL_UP
    )


def media_stopped(record: CallRecord | None) -> bool:
    """Whether a parked call's record now says its stream will not come back."""
    return record is None or not resumable(record)


class CallOutput:
    """The backend's `MediaOutput` for the whole call: the attached socket's `SessionOutput`."""

    def __init__(self, output: SessionOutput) -> None:
        self._current = output
        self._retired: SessionOutput | None = None

    def attach(self, output: SessionOutput) -> None:
        """Play through `output` from now on; what the old socket still held is dropped."""
        old, self._current = self._current, output
        self._retired = old
        old.stop_audio()  # also releases a `play` waiting for room in the old pacer

    def play(self, pcm: bytes, *, playback_id: str | None = None) -> Coroutine[Any, Any, None]:
        return self._current.play(pcm, playback_id=playback_id)

    async def end_of_playback(self, playback_id: str | None = None) -> None:
        await self._current.end_of_playback(playback_id)

    def stop_audio(self) -> None:
        self._current.stop_audio()

    def heard_ms(self, playback_id: str) -> float:
        heard = self._current.heard_ms(playback_id)
        if not heard and self._retired is not None:
            # A playback of the dropped socket: heard up to what that socket played.
            return self._retired.heard_ms(playback_id)
        return heard

    def report(self, event: BackendEvent) -> None:
        self._current.report(event)

    def end(self, reason: str) -> None:
        self._current.end(reason)

    @property
    def queued_frames(self) -> int:
        return self._current.queued_frames


def _no_error_handler(exc: Exception) -> None:
    raise exc


@dataclass(slots=True)
class CallMedia:
    """The per-call half of a media session: the backend and what feeds it, across sockets."""

    backend: Backend
    stream: StreamFormat  # the format the backend was opened with
    queue: DropOldestQueue[InboundEvent]
    stats: MediaStats
    health: HealthTracker  # the backend's, for the call's record and failover
    output: CallOutput | None = None
    opened: bool = False
    inbound_resamplers: dict[str | None, Resampler | None] = field(default_factory=dict)
    # The attached session's handler; the feed calls it only on a backend error.
    on_error: Callable[[Exception], None] = _no_error_handler
    feed: BackendFeed[InboundEvent] = field(init=False)

    def __post_init__(self) -> None:
        self.feed = BackendFeed(
            self.queue, lambda exc: self.on_error(exc), self.stats.latency.inbound
        )

    @property
    def backend_rate(self) -> int:
        return self.backend.sample_rate or self.stream.sample_rate
