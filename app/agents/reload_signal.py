"""SIGHUP re-reads AGENTS_FILE, as `POST /api/agents/reload` does; a bad file is logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator

from app.agents.directory import AgentDirectory
from app.settings import ConfigurationError

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def reload_on_sighup(directory: AgentDirectory) -> AsyncIterator[None]:
    """While entered, SIGHUP reloads `directory`; a reload still running at exit is cancelled."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def start() -> None:
        task = loop.create_task(_reload(directory), name="agents-reload")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # Only the main thread may install handlers (a server in a thread reloads over HTTP only);
    # Windows has no SIGHUP.
    installed = False
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, start)
            installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)
        for task in list(tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _reload(directory: AgentDirectory) -> None:
    try:
        await directory.reload()
    except ConfigurationError as exc:
        log.error("SIGHUP: agents not reloaded, the previous ones stay: %s", exc)
