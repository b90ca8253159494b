"""The model's audio on its way to the caller, played from its own task.

`MediaOutput.play` waits while the call's outbound buffer is full. Playing deltas from the task
that reads server events would then delay reading the next event, a `speech_started` among
them, by as long as the buffer takes to drain. A separate player keeps the reader free; on
barge-in the player drops what it holds and a `play` stuck waiting for space is cancelled, so
no frame of the interrupted response is queued after `stop_audio`. When an item's audio is
complete, `finish` queues its `end_of_playback` behind its last chunk, so the output flushes the
item's tail only once all of it has been handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from app.backends.base import MediaOutput


class AudioPlayer:
    """Hands (item id, PCM) chunks to `output.play`, and item ends to `output.end_of_playback`,
    in order."""

    def __init__(self, output: MediaOutput, on_play: Callable[[], None] | None = None) -> None:
        self._output = output
        self._on_play = on_play
        # (item id, PCM), or (item id, None): the item's audio ends there.
        self._queue: deque[tuple[str, bytes | None]] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_play: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def enqueue(self, item_id: str, pcm: bytes) -> None:
        """Queue a chunk of the item's audio; it is played after everything queued before."""
        self._push(item_id, pcm)

    def finish(self, item_id: str) -> None:
        """The item's audio is complete: end its playback after everything queued before."""
        self._push(item_id, None)

    def interrupt(self) -> None:
        """Drop queued chunks and abandon a `play` that is waiting for buffer space."""
        self._queue.clear()
        stuck = self._in_play
        if stuck is not None:
            self._in_play = None
            stuck.cancel()
            self._retired.add(stuck)
            stuck.add_done_callback(self._retired.discard)
            if self._task is stuck:
                self._task = None

    async def close(self) -> None:
        """Stop playing; cancels and awaits the player's tasks."""
        self._queue.clear()
        tasks = [task for task in (self._task, *self._retired) if task is not None]
        self._task = self._in_play = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _push(self, item_id: str, pcm: bytes | None) -> None:
        self._queue.append((item_id, pcm))
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="realtime-player")

    async def _run(self) -> None:
        me = asyncio.current_task()
        queue, output = self._queue, self._output
        while True:
            if not queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            item_id, pcm = queue.popleft()
            if pcm is not None and self._on_play is not None:
                self._on_play()
            self._in_play = me
            try:
                if pcm is None:
                    await output.end_of_playback(item_id)
                else:
                    await output.play(pcm, playback_id=item_id)
            finally:
                if self._in_play is me:
                    self._in_play = None
