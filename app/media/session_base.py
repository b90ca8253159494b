"""What every part of a media session shares: its state, the call's identity, and the small
helpers the frame path, the parking of a dropped stream and the backend's health all use.

`MediaSession` (app.media.session) is put together from `SessionParking`
(app.media.session_parking) and `SessionHealth` (app.media.session_health), both built on
`SessionBase`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.backends.base import (
    Backend,
    CallActions,
    CallEventIn,
    InboundEvent,
    StreamFormat,
)
from app.calls.store import CallStore
from app.calls.write_behind import StateWriter
from app.media import session_record
from app.media.asgi_channels import raw_channels
from app.media.failover import Failover
from app.media.inbound import (
    InboundStream,
    SessionEnd,
)
from app.media.inbound_queue import DropOldestQueue
from app.media.latency import CallLatency
from app.media.outbound_socket import OutboundSocket
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.resume import (
    CallMedia,
)
from app.media.stats import MediaStats
from app.media.watchdog import Watchdog
from app.observability.console_feed import EventHub
from app.observability.levels import LevelMeter
from app.observability.metrics import SessionMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

METRICS_FLUSH_INTERVAL_S = 1.0  # Prometheus counters from the session's own ints
STATE_FLUSH_INTERVAL_S = 2.0  # counters to the call's record (transcript lines go at once)
BACKEND_CLOSE_TIMEOUT_S = 5.0
BACKEND_FAILED = 1011
SHUTTING_DOWN = 1001
SHUTDOWN_ACTION_TIMEOUT_S = 2.0  # the drain deadline is near: a hang-up must not hold it up
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
class SocketMedia:
    """What exists once AudioMetadata has announced the stream (this socket's side)."""

    stream: StreamFormat
    call: CallMedia
    pacer: OutboundPacer
    output: SessionOutput
    frames_out_before: int  # sent by the call's earlier sockets


class SessionEnded(Exception):
    """Raised inside the session's tasks to end it, with why."""

    def __init__(self, end: SessionEnd) -> None:
        super().__init__(end.reason)
        self.end = end


class EarlierSocket(Protocol):
    """The call's earlier media session, whose backend a new socket takes over."""

    def hand_over(self) -> asyncio.Future[CallMedia | None]: ...


class SessionBase:
    """The state of one ACS media socket's session (see `MediaSession`)."""

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
        failover: Failover,
        metrics: SessionMetrics,
        events: EventHub,
        previous: EarlierSocket | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.state = SessionState.RUNNING
        self.stats = MediaStats(latency=CallLatency(clock))
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
        self._failover = failover
        self._shutting_down = False
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
        self._media: SocketMedia | None = None
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

    def _sync_stats(self) -> None:
        media = self._media
        if media is not None:
            self.stats.frames_out = media.frames_out_before + media.pacer.frames_sent

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


def first_end(group: BaseExceptionGroup[SessionEnded]) -> SessionEnd:
    for exc in group.exceptions:
        if isinstance(exc, SessionEnded):
            return exc.end
        if isinstance(exc, BaseExceptionGroup):
            return first_end(exc)
    return SessionEnd("ended", 1000)
