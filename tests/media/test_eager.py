"""`eager.step`: a send that need not wait completes on the spot; one that must is resumed."""

from __future__ import annotations

import asyncio

import pytest

from app.media import eager


async def test_a_coroutine_that_never_waits_completes_in_the_call() -> None:
    done: list[str] = []

    async def send() -> None:
        done.append("sent")

    assert eager.step(send()) is None
    assert done == ["sent"]


async def test_a_coroutine_that_waits_is_resumed_by_whoever_awaits_the_rest() -> None:
    gate = asyncio.Event()
    steps: list[str] = []

    async def send() -> None:
        steps.append("before")
        await gate.wait()
        steps.append("after")

    rest = eager.step(send())
    assert rest is not None
    assert steps == ["before"]
    finisher = asyncio.create_task(rest)
    await asyncio.sleep(0.01)
    assert not finisher.done()
    gate.set()
    await asyncio.wait_for(finisher, 1)
    assert steps == ["before", "after"]


async def test_errors_before_the_first_wait_reach_the_caller() -> None:
    async def send() -> None:
        raise OSError("socket gone")

    with pytest.raises(OSError, match="socket gone"):
        eager.step(send())


async def test_errors_after_a_wait_reach_the_awaiting_task() -> None:
    gate = asyncio.Event()

    async def send() -> None:
        await gate.wait()
        raise ConnectionResetError("reset")

    rest = eager.step(send())
    assert rest is not None
    gate.set()
    with pytest.raises(ConnectionResetError):
        await rest


async def test_cancelling_the_awaiting_task_cancels_the_send() -> None:
    cleaned: list[bool] = []

    async def send() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    rest = eager.step(send())
    assert rest is not None
    finisher = asyncio.create_task(rest)
    await asyncio.sleep(0.01)
    finisher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finisher
    assert cleaned == [True]


async def test_awaitables_that_are_not_coroutines_are_stepped_too() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    rest = eager.step(future)
    assert rest is not None
    future.set_result(None)
    await asyncio.wait_for(rest, 1)
