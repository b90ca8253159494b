"""Knowing that the process was asked to stop, before the ASGI server starts waiting.

On SIGTERM (`docker stop`, an App Service restart) uvicorn stops accepting, then waits for open
connections to end before it runs the lifespan's shutdown. A console's event stream never ends
by itself, so the app must learn of the signal when it arrives, not at lifespan shutdown.
`ShutdownSignal` chains the handler that is installed when it enters (uvicorn's, whichever way
uvicorn was started) and runs the app's callbacks first, on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownSignal:
    """While entered, SIGTERM and SIGINT first run `on_signal` callbacks, then the old handler."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.requested = False

    def on_signal(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the event loop when a stop signal arrives (once)."""
        self._callbacks.append(callback)

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

    def trigger(self) -> None:
        """Run the callbacks now (on the loop); what a stop signal does before passing it on."""
        if self.requested:
            return
        self.requested = True
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("shutdown callback failed")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.trigger)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            # Nobody else handles it: behave as the default would, after our callbacks ran.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
