"""The session's clock-driven rules: idle timeout, duration cap, and periodic flushes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.media.inbound import SessionEnd
from app.media.waits import wait_for_event

TICK_S = 0.5  # shorter only for idle/duration limits under a second


class Watchdog:
    """Ends a session that went quiet or ran too long, and runs `tick` about every TICK_S."""

    def __init__(
        self,
        *,
        idle_s: float,
        max_s: float,
        clock: Callable[[], float],
        last_inbound: Callable[[], float],
    ) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self._clock = clock
        self._last_inbound = last_inbound
        self._started = clock()
        self._interval = min(TICK_S, idle_s / 2, max_s / 2)
        self._requested: SessionEnd | None = None
        self._wakeup = asyncio.Event()

    def request_end(self, end: SessionEnd) -> None:
        """End the session at the next wakeup (now); the first request wins."""
        if self._requested is None:
            self._requested = end
        self._wakeup.set()

    def check(self, now: float) -> SessionEnd | None:
        """Why the session must end at `now`, if it must."""
        if self._requested is not None:
            return self._requested
        if now - self._last_inbound() > self.idle_s:
            return SessionEnd(f"no inbound audio for {self.idle_s:g} s", 1000)
        if now - self._started > self.max_s:
            return SessionEnd(f"call exceeded {self.max_s:g} s", 1000)
        return None

    async def run(self, tick: Callable[[float], None]) -> SessionEnd:
        """Watch until the session must end; returns why."""
        while True:
            if self._requested is None:
                self._wakeup.clear()
                await wait_for_event(self._wakeup, self._interval)
            now = self._clock()
            end = self.check(now)
            if end is not None:
                return end
            tick(now)
