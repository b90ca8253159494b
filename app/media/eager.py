"""Run an ASGI `send` coroutine to completion on the spot when it does not need to wait.

A frame that is due can go out from whichever code produced it instead of waking the pacer's
task (one task switch less per frame, measured in `bench/`). uvicorn's `send` only suspends
under write back-pressure; when it does, the caller gets the rest of the coroutine back and
must await it before sending anything else, so frames never reorder.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def step(awaitable: Awaitable[None]) -> Coroutine[Any, Any, None] | None:
    """Run `awaitable` until it first suspends: None when it finished, else its continuation.

    Exceptions raised before the first suspension propagate to the caller.
    """
    coro = awaitable if type(awaitable) is types.CoroutineType else _as_coroutine(awaitable)
    try:
        awaited = coro.send(None)
    except StopIteration:
        return None
    return _resume(coro, awaited)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, Any, None]:
    # The awaiting task waits on what the coroutine was waiting on, then drives it on; throw()
    # carries a cancellation of that task into the coroutine.
    while True:
        try:
            sent = yield awaited
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # handed to the coroutine, which decides
            try:
                awaited = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                awaited = coro.send(sent)
            except StopIteration:
                return
