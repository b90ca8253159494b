"""Handing inbound events to the backend in order, without ever blocking the socket reader.

`deliver` runs the backend's call on the spot when nothing is queued or in flight (`eager.step`):
a call that completes without waiting, the usual case, costs no task switch. A call that has to
wait is finished by the feeder task (`run`), and later events queue behind it (dropping the
oldest audio when full), so events reach the backend one at a time and in order. An item
delivered with its arrival time is reported to `on_handled` once the backend's call returns
(the inbound latency), on the spot or from the feeder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from app.media import eager
from app.media.inbound_queue import DropOldestQueue

T = TypeVar("T")
Job = Coroutine[Any, Any, None]


class BackendFeed(Generic[T]):
    """Runs `handle(item)` for each delivered item, in order, one at a time, after `first`."""

    def __init__(
        self,
        queue: DropOldestQueue[T],
        on_error: Callable[[Exception], None],
        on_handled: Callable[[float], None] | None = None,
    ) -> None:
        self._handle: Callable[[T], Job] = _not_started
        self._queue = queue
        self._on_error = on_error  # may raise to end the session
        self._on_handled = on_handled
        self._in_flight: Job | None = None
        self._in_flight_at: float | None = None
        self._busy = False
        self._wakeup = asyncio.Event()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self, handle: Callable[[T], Job], first: Job) -> None:
        """Run `first` (the backend's open), then `handle` each item delivered from now on."""
        self._handle = handle
        self._step(first)

    def deliver(self, item: T, arrived: float | None = None) -> bool:
        """Hand `item` on now, or queue it behind earlier work; True when a frame was dropped.
        `arrived`: when it came in, to report to `on_handled` once handled."""
        if self._busy or self._in_flight is not None or len(self._queue):
            dropped = self._queue.put(item, arrived)
            self._wakeup.set()
            return dropped
        self._step(self._handle(item), arrived)
        return False

    def _step(self, job: Job, arrived: float | None = None) -> None:
        try:
            rest = eager.step(job)
        except Exception as exc:
            self._on_error(exc)
            return
        if rest is not None:
            self._in_flight, self._in_flight_at = rest, arrived
            self._wakeup.set()
        elif arrived is not None and self._on_handled is not None:
            self._on_handled(arrived)

    def close(self) -> None:
        """Drop a call still in flight (the session is over; its task was cancelled)."""
        rest, self._in_flight = self._in_flight, None
        if rest is not None:
            rest.close()

    async def run(self) -> None:
        """Finish calls that had to wait, then queued items; until cancelled."""
        queue = self._queue
        while True:
            rest = self._in_flight
            if rest is None and not len(queue):
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._busy = True
            try:
                if rest is not None:
                    self._in_flight, arrived = None, self._in_flight_at
                    await rest
                else:
                    item, arrived = queue.pop_timed()
                    await self._handle(item)
                if arrived is not None and self._on_handled is not None:
                    self._on_handled(arrived)
            except Exception as exc:
                self._on_error(exc)
            finally:
                self._busy = False


def _not_started(item: object) -> Job:
    raise RuntimeError("BackendFeed.deliver before start")
