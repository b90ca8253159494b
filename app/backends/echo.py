"""The echo backend: plays the caller's audio back, optionally after a delay."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from app.backends.base import (
    AudioIn,
    BackendEvent,
    CallActions,
    CallContext,
    InboundEvent,
    MediaOutput,
)
from app.settings import Settings


def create_backend(settings: Settings) -> EchoBackend:
    return EchoBackend(delay_ms=settings.echo_delay_ms)


class EchoBackend:
    """Echo for smoke tests and latency measurement; with a delay, one timer task per call."""

    sample_rate: int | None = None

    def __init__(self, delay_ms: int = 0) -> None:
        self._delay_s = delay_ms / 1000.0
        self._output: MediaOutput | None = None
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self._output = output
        if self._delay_s > 0:
            self._task = asyncio.create_task(self._play_delayed(output))
        output.report(BackendEvent("connected", {"backend": "echo"}))

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is not AudioIn or self._output is None:
            return
        if self._task is None:
            await self._output.play(event.pcm)
            return
        self._delay(event.pcm)

    def _delay(self, pcm: bytes) -> None:
        self._delayed.append((time.monotonic() + self._delay_s, pcm))
        self._wakeup.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._delayed.clear()

    async def _play_delayed(self, output: MediaOutput) -> None:
        while True:
            if not self._delayed:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due, pcm = self._delayed[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._delayed.popleft()
            await output.play(pcm)
