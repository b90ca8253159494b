"""When a Realtime session is due for renewal, its reader learns so between two events.

The reader waits for the next server event about 50 times a second. An `asyncio.timeout`
around every wait costs a timer armed and cancelled per event (about 5 us, some 3 % of the
Realtime path's CPU); this timer is armed once per session and interrupts the reader's wait
only when it fires, as `asyncio.timeout` does (a cancellation it takes back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class RenewalTimer:
    """Armed for one reader task; `read` returns None once the renewal time has come."""

    def __init__(self, at: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("RenewalTimer must be created by the task that reads")
        self._task = task
        self._due = False
        self._reading = False
        self._interrupted = False
        self._handle = self._loop.call_at(at, self._fire)

    async def read(self, receive: Callable[[], Awaitable[T]]) -> T | None:
        """`await receive()`, or None when the renewal time came first (or has come)."""
        if self._due:
            return None
        self._reading = True
        try:
            value = await receive()
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            self._interrupted = False
            if self._task.uncancel():
                raise  # also cancelled from elsewhere: that one wins
            return None
        finally:
            self._reading = False
        if self._interrupted:  # `receive` swallowed the interruption: take it back all the same
            self._interrupted = False
            self._task.uncancel()
        return value

    def postpone(self, at: float) -> None:
        """Not yet after all (the model is mid-turn): come back at `at`."""
        self._handle.cancel()
        self._due = False
        self._handle = self._loop.call_at(at, self._fire)

    def cancel(self) -> None:
        """The session is over: the timer never fires."""
        self._handle.cancel()

    def _fire(self) -> None:
        self._due = True
        if self._reading:
            # Reads are safe to interrupt: websockets keeps an unread message for the next one.
            self._interrupted = True
            self._task.cancel()
