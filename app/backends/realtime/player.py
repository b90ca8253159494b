"""The model's audio on its way to the caller, played from its own task.

`MediaOutput.play` waits while the call's outbound buffer is full. Playing deltas from the task
that reads server events would then delay reading the next event, a `speech_started` among
them, by as long as the buffer takes to drain. A separate player keeps the reader free; on
barge-in the player drops what it holds and a `play` stuck waiting for space is cancelled, so
no frame of the interrupted response is queued after `stop_audio`. When an item's audio is
complete, `finish` queues its `end_of_playback` behind its last chunk, so the output flushes the
item's tail only once all of it has been handed over.

While the player is idle (nothing queued, nothing in play), a chunk is played on the spot
(`eager.step`): the output takes it without waiting almost always, and the reader is spared a
wake-up of the player's task per delta. Only when `play` has to wait does its rest go to the
player's task, and everything after it queues behind, so chunks never reorder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.backends.base import MediaOutput
from app.media import eager


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
        # A chunk played on the spot that had to wait: the player's task finishes it first.
        self._rest: Coroutine[Any, Any, None] | None = None
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
        self._drop_rest()
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
        self._drop_rest()
        tasks = [task for task in (self._task, *self._retired) if task is not None]
        self._task = self._in_play = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _push(self, item_id: str, pcm: bytes | None) -> None:
        if not self._queue and self._in_play is None and self._rest is None:
            rest = eager.step(self._play(item_id, pcm))
            if rest is None:
                return
            self._rest = rest
        else:
            self._queue.append((item_id, pcm))
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="realtime-player")

    def _play(self, item_id: str, pcm: bytes | None) -> Awaitable[None]:
        if pcm is None:
            return self._output.end_of_playback(item_id)
        if self._on_play is not None:
            self._on_play()
        return self._output.play(pcm, playback_id=item_id)

    def _drop_rest(self) -> None:
        rest, self._rest = self._rest, None
        if rest is not None:
            rest.close()

    async def _run(self) -> None:
        me = asyncio.current_task()
        queue = self._queue
        while True:
            rest, self._rest = self._rest, None
            if rest is not None:
                await self._await_play(me, rest)
                continue
            if not queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            item_id, pcm = queue.popleft()
            await self._await_play(me, self._play(item_id, pcm))

    async def _await_play(self, me: asyncio.Task[Any] | None, play: Awaitable[None]) -> None:
        self._in_play = me
        try:
            await play
        finally:
            if self._in_play is me:
                self._in_play = None
