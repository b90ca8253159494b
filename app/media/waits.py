"""Waiting for an asyncio.Event with a time limit, without a task per wait."""

from __future__ import annotations

import asyncio


async def wait_for_event(event: asyncio.Event, limit_s: float | None) -> bool:
    """Wait until `event` is set, at most `limit_s` seconds; True when the time ran out.

    A timer handle rather than `asyncio.wait_for`, which creates a task per wait on 3.11
    (the pacer and the watchdog of every call wait many times a second).
    """
    if limit_s is None:
        await event.wait()
        return False
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        event.set()

    timer = asyncio.get_running_loop().call_later(max(limit_s, 0.0), expire)
    try:
        await event.wait()
    finally:
        timer.cancel()
    return expired
