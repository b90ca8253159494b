"""The renewal timer interrupts the reader's wait only when it fires, and never hides a
cancellation that came from elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from app.backends.realtime.renewal import RenewalTimer


async def _never() -> str:
    await asyncio.Event().wait()
    return "never"


async def _soon() -> str:
    await asyncio.sleep(0)
    return "event"


async def test_reads_pass_events_through_until_the_renewal_time_interrupts_a_wait() -> None:
    loop = asyncio.get_running_loop()
    renewal = RenewalTimer(loop.time() + 0.05)
    assert await renewal.read(_soon) == "event"
    assert await renewal.read(_never) is None  # the wait is cut short when the time comes
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    called = []

    async def receive() -> str:
        called.append(1)
        return "event"

    assert await renewal.read(receive) is None  # still due: no read at all
    assert called == []


async def test_postponed_renewal_reads_on_until_the_new_time() -> None:
    loop = asyncio.get_running_loop()
    renewal = RenewalTimer(loop.time())
    await asyncio.sleep(0.01)
    assert await renewal.read(_soon) is None
    renewal.postpone(loop.time() + 0.05)
    assert await renewal.read(_soon) == "event"
    started = loop.time()
    assert await renewal.read(_never) is None
    assert loop.time() - started >= 0.03


async def test_a_cancelled_timer_never_interrupts() -> None:
    loop = asyncio.get_running_loop()
    renewal = RenewalTimer(loop.time() + 0.01)
    renewal.cancel()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await renewal.read(_never)


async def test_a_cancellation_from_elsewhere_is_not_taken_for_the_renewal() -> None:
    async def reader() -> str | None:
        loop = asyncio.get_running_loop()
        renewal = RenewalTimer(loop.time() + 0.02)
        return await renewal.read(_never)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    task.cancel()  # the backend closing, before the renewal time
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_at_the_same_moment_as_the_renewal_still_cancels() -> None:
    loop = asyncio.get_running_loop()
    at = loop.time() + 0.02

    async def reader() -> str | None:
        return await RenewalTimer(at).read(_never)

    task = asyncio.create_task(reader())
    loop.call_at(at, task.cancel)  # the backend closing in the very loop turn the timer fires
    with pytest.raises(asyncio.CancelledError):
        await task
