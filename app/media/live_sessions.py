"""The live media sessions of this instance: admission (MAX_CONCURRENT_CALLS) and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from app.media.session import MediaSession

SHUTDOWN_GRACE_S = 5.0


class TooManyCalls(Exception):
    """The instance already holds MAX_CONCURRENT_CALLS media sockets."""


class MediaSessions:
    """Counts and finds live sessions; ends them all on shutdown."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[int, MediaSession] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self.total = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def find(self, call_connection_id: str) -> MediaSession | None:
        """The call's most recent session here (live, or parked awaiting a new socket)."""
        for session in reversed(self._sessions.values()):
            if session.call.call_connection_id == call_connection_id:
                return session
        return None

    def admit(self) -> None:
        """Raise TooManyCalls when full (or shutting down)."""
        if self._closing:
            raise TooManyCalls("this instance is shutting down")
        if len(self._sessions) >= self.max_sessions:
            raise TooManyCalls(f"this instance is at its limit of {self.max_sessions} calls")

    @contextlib.asynccontextmanager
    async def hold(self, session: MediaSession) -> AsyncIterator[None]:
        """Register `session` while it runs."""
        self.admit()
        key = id(session)
        self._sessions[key] = session
        self._idle.clear()
        self.total += 1
        try:
            yield
        finally:
            del self._sessions[key]
            if not self._sessions:
                self._idle.set()

    async def drain(self, limit_s: float) -> None:
        """Refuse new sessions, let running ones go on for up to `limit_s`, then end the rest."""
        self._closing = True
        if self._sessions and limit_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), limit_s)
        await self.close()

    async def close(self) -> None:
        """End every session and wait (bounded) for them to finish."""
        self._closing = True
        for session in list(self._sessions.values()):
            session.shut_down()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), SHUTDOWN_GRACE_S)
