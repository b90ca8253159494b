"""Per-key serial execution: jobs submitted under one key run one after another, in order; keys
run concurrently. The emulator keeps each call's callbacks and state changes in order with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class SerialLanes:
    """Owns one worker task per busy key; a worker exits when its lane is empty."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def submit(self, key: str, job: Job) -> None:
        """Run `job` after every job already submitted under `key`."""
        if self._closed:
            raise RuntimeError("lanes are closed")
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        self._lanes[key] = deque([job])
        self._idle.clear()
        self._workers[key] = asyncio.create_task(self._drain(key), name=f"emulator-lane-{key}")

    async def join(self) -> None:
        """Wait until every submitted job has finished."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Cancel every pending and running job and wait for the workers to end."""
        self._closed = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._lanes.clear()
        self._workers.clear()
        self._idle.set()

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                job = lane.popleft()
                try:
                    await job()
                except Exception:
                    # A bug in one job must not drop the jobs queued behind it.
                    log.exception("emulator job for %s failed", key)
        finally:
            # No await between the empty check and removal: a concurrent submit either appended
            # before the check (and ran) or finds no lane and starts a new worker.
            self._lanes.pop(key, None)
            self._workers.pop(key, None)
            if not self._workers:
                self._idle.set()
