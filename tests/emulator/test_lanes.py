"""Per-key serial execution: order within a key, concurrency across keys, cancellation."""

from __future__ import annotations

import asyncio

from app.emulator.lanes import SerialLanes


async def test_jobs_under_one_key_run_in_submission_order() -> None:
    lanes = SerialLanes()
    done: list[int] = []

    def job(n: int, delay: float) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            done.append(n)

        lanes.submit("call", run)

    job(1, 0.02)
    job(2, 0.0)
    job(3, 0.01)
    await lanes.join()

    assert done == [1, 2, 3]


async def test_a_slow_key_does_not_hold_up_another() -> None:
    lanes = SerialLanes()
    release = asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        await release.wait()
        done.append("slow")

    async def fast() -> None:
        done.append("fast")
        release.set()

    lanes.submit("a", slow)
    lanes.submit("b", fast)
    await lanes.join()

    assert done == ["fast", "slow"]


async def test_a_failing_job_does_not_drop_the_next() -> None:
    lanes = SerialLanes()
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async def after() -> None:
        done.append("after")

    lanes.submit("call", broken)
    lanes.submit("call", after)
    await lanes.join()

    assert done == ["after"]


async def test_aclose_cancels_running_jobs() -> None:
    lanes = SerialLanes()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    lanes.submit("call", forever)
    await asyncio.sleep(0)
    await lanes.aclose()

    assert cancelled.is_set()
