"""Callers who hang up by themselves after a while: a scripted test call ends on its own rather
than streaming until someone remembers it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class ScheduledHangUps:
    """Owns one timer task per call; `aclose` cancels those still waiting."""

    def __init__(self) -> None:
        self._timers: dict[str, asyncio.Task[None]] = {}

    def schedule(
        self, call_connection_id: str, after_s: float, hang_up: Callable[[], None]
    ) -> None:
        """Run `hang_up` in `after_s` seconds (a second schedule for the call replaces it)."""
        self.cancel(call_connection_id)

        async def wait_then_hang_up() -> None:
            await asyncio.sleep(after_s)
            self._timers.pop(call_connection_id, None)
            hang_up()

        self._timers[call_connection_id] = asyncio.create_task(
            wait_then_hang_up(), name=f"emulator-hang-up-{call_connection_id}"
        )

    def cancel(self, call_connection_id: str) -> None:
        """Forget the call's timer (it ended another way)."""
        timer = self._timers.pop(call_connection_id, None)
        if timer is not None:
            timer.cancel()

    async def aclose(self) -> None:
        """Cancel every waiting timer and wait for them to end."""
        timers = list(self._timers.values())
        self._timers.clear()
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer
