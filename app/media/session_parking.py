"""Parking a call's backend when ACS's socket drops, and handing it to the stream's new socket.

RUNNING --peer dropped (1006), media not stopped--> PARKED --new socket--> HANDED_OVER
   |                                                  |--window over, media stopped--> ENDED
   +--any other end---------------------------------------------------------------> ENDED
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.calls.store import StoreUnavailable
from app.media import session_record
from app.media.inbound import (
    SessionEnd,
)
from app.media.resume import (
    STREAM_INTERRUPTED,
    CallMedia,
    media_stopped,
    resumable,
)
from app.media.session_base import (
    HANDOVER_TIMEOUT_S,
    PARK_CHECK_INTERVAL_S,
    REPLACED,
    SessionBase,
    SessionEnded,
    SessionState,
)

log = logging.getLogger(__name__)


class SessionParking(SessionBase):
    """The resume side of a media session: park, wait for a new socket, hand over."""

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

    async def _take_over(self) -> CallMedia | None:
        previous, self._previous = self._previous, None
        if previous is None:
            return None
        try:
            return await asyncio.wait_for(previous.hand_over(), HANDOVER_TIMEOUT_S)
        except TimeoutError:
            log.warning("the call's earlier media socket did not let go", extra=self._log_extra())
            return None

    async def _parkable(self, end: SessionEnd, call: CallMedia) -> bool:
        """Whether ACS may bring the stream back: the peer went without the media stopping."""
        if not call.opened:
            return False
        if self._claimed:
            return True
        window = self._settings.media_resume_window_s
        if window <= 0 or self._end_requested is not None:
            return False
        if not end.dropped:
            # The app ended it (idle, duration cap, backend failure, too big), or ACS closed
            # the socket itself (the call or its media ended): no stream is coming back.
            return False
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
        except SessionEnded as failed:
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
