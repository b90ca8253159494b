"""Stopping without dropping calls: learn of SIGTERM first, drain, then let the server stop.

On SIGTERM (`docker stop`, an App Service restart or scale-in) uvicorn at once closes every
media socket with 1012 and waits for other connections, such as a console's event stream,
which never end by themselves. `ShutdownSignal` sits in front of the handler installed when it
enters (uvicorn's, however uvicorn was started): the first stop signal runs the app's callbacks
(readiness off, console streams closed), awaits its drains (running calls go on for
SHUTDOWN_DRAIN_S, then end through the app's own path), and only then hands the signal on. A
second signal is handed on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownSignal:
    """While entered, a stop signal runs `on_signal` callbacks and `drain_with` drains first."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._drains: list[Callable[[], Awaitable[None]]] = []
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None
        self._signalled = False
        self.requested = False

    def on_signal(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the event loop as soon as a stop signal arrives (once)."""
        self._callbacks.append(callback)

    def drain_with(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Await `drain()` before the server is told to stop (in the order registered)."""
        self._drains.append(drain)

    async def __aenter__(self) -> ShutdownSignal:
        self._loop = asyncio.get_running_loop()
        # Python only lets the main thread install handlers; elsewhere (a server in a thread)
        # the app still shuts down, only without the early notice.
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            # Only undo our own handler: another app in this process may have chained on top.
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, previous)
        self._previous.clear()
        draining, self._draining = self._draining, None
        if draining is not None and not draining.done():
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining

    def trigger(self) -> None:
        """Run the callbacks now (on the loop); what a stop signal does first."""
        if self.requested:
            return
        self.requested = True
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("shutdown callback failed")

    async def drain(self) -> None:
        """Run the callbacks, then every drain; a failing drain does not stop the others."""
        self.trigger()
        for drain in self._drains:
            try:
                await drain()
            except Exception:
                log.exception("shutdown drain failed")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        loop = self._loop
        first, self._signalled = not self._signalled, True
        if not first or loop is None or loop.is_closed():
            self._pass_on(signum, frame)  # a second signal: stop now
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._start_drain, signum)

    def _start_drain(self, signum: int) -> None:
        self._draining = asyncio.get_running_loop().create_task(
            self._drain_then_pass_on(signum), name="shutdown-drain"
        )

    async def _drain_then_pass_on(self, signum: int) -> None:
        try:
            await self.drain()
        finally:
            self._pass_on(signum, None)

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum, signal.getsignal(signum))
        if callable(previous) and previous is not self._handle:
            previous(signum, frame)
        elif previous == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            # Nobody else handles it: behave as the default would, after our callbacks ran.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
