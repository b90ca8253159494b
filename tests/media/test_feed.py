"""The media feed and its drop-oldest queue, driven without a socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from app.backends.base import AudioIn, DtmfIn
from app.media.feed import BackendFeed
from app.media.inbound_queue import DropOldestQueue


def frame(index: int) -> AudioIn:
    return AudioIn(index.to_bytes(2, "little"))


def index_of(item: object) -> object:
    return int.from_bytes(item.pcm, "little") if isinstance(item, AudioIn) else item


def test_a_full_queue_drops_its_oldest_audio_and_keeps_control_items() -> None:
    queue: DropOldestQueue[object] = DropOldestQueue(3)
    for item in (DtmfIn("1"), frame(1), frame(2)):
        assert not queue.put(item)
    assert queue.put(frame(3))
    assert [index_of(queue.pop()) for _ in range(len(queue))] == [DtmfIn("1"), 2, 3]
    assert queue.dropped == 1


async def test_calls_that_need_not_wait_run_on_the_spot() -> None:
    handled: list[int] = []

    async def handle(item: AudioIn) -> None:
        handled.append(int.from_bytes(item.pcm, "little"))

    feed = started(handle, DropOldestQueue[AudioIn](10), _raise)
    for index in range(3):
        feed.deliver(frame(index))
        assert handled == list(range(index + 1))  # before any task ran
    assert feed.queued == 0


async def test_a_call_that_waits_is_finished_by_run_and_later_items_queue_in_order() -> None:
    gate = asyncio.Event()
    handled: list[int] = []

    async def handle(item: AudioIn) -> None:
        index = int.from_bytes(item.pcm, "little")
        if index == 1:
            await gate.wait()
        handled.append(index)

    feed = started(handle, DropOldestQueue[AudioIn](10), _raise)
    runner = asyncio.create_task(feed.run())
    for index in range(5):
        feed.deliver(frame(index))
    assert handled == [0]
    assert feed.queued == 3
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert handled == [0, 1, 2, 3, 4]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def test_nothing_is_handled_before_the_first_job_has_finished() -> None:
    gate = asyncio.Event()
    handled: list[int] = []

    async def open_backend() -> None:
        await gate.wait()

    async def handle(item: AudioIn) -> None:
        handled.append(int.from_bytes(item.pcm, "little"))

    feed = BackendFeed(DropOldestQueue[AudioIn](10), _raise)
    feed.start(handle, open_backend())
    runner = asyncio.create_task(feed.run())
    feed.deliver(frame(0))
    feed.deliver(frame(1))
    await asyncio.sleep(0)
    assert handled == []
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert handled == [0, 1]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def test_errors_reach_on_error_from_either_path() -> None:
    errors: list[str] = []

    async def handle(item: AudioIn) -> None:
        if int.from_bytes(item.pcm, "little") == 1:
            await asyncio.sleep(0)
        raise KeyError(int.from_bytes(item.pcm, "little"))

    feed = started(handle, DropOldestQueue[AudioIn](10), lambda e: errors.append(repr(e)))
    runner = asyncio.create_task(feed.run())
    feed.deliver(frame(0))  # raises on the spot
    feed.deliver(frame(1))  # raises after waiting, in run
    for _ in range(10):
        await asyncio.sleep(0)
    assert errors == ["KeyError(0)", "KeyError(1)"]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


def started(
    handle: Callable[[AudioIn], Coroutine[Any, Any, None]],
    queue: DropOldestQueue[AudioIn],
    on_error: Callable[[Exception], None],
) -> BackendFeed[AudioIn]:
    feed = BackendFeed(queue, on_error)
    feed.start(handle, _opened())
    return feed


async def _opened() -> None:
    return None


def _raise(exc: Exception) -> None:
    raise exc
