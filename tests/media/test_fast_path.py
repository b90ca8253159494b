"""The media feed runs a backend's `receive` on the spot, in the socket reader, while nothing is
queued or waiting; a call that has to wait is finished by the feeder task with later frames
queued behind it. Whichever path a frame takes, the backend sees every frame once and in order."""

from __future__ import annotations

import asyncio

import pytest

from app.backends.base import AudioIn, CallActions, CallContext, InboundEvent, MediaOutput
from app.emulator.media_client import StreamScript
from tests.conftest import AppFactory, StreamFactory


def _frame(index: int) -> bytes:
    return index.to_bytes(2, "little") * 320


class PickyBackend:
    """Handles most frames without waiting; every third one waits a little (frame 30 longer
    than a frame's time, so the next frame arrives while it waits)."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.got: list[tuple[int, asyncio.Task[object] | None]] = []

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        return None

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is AudioIn:
            index = int.from_bytes(event.pcm[:2], "little")
            if index % 3 == 0:
                await asyncio.sleep(0.05 if index == 30 else 0.001)
            self.got.append((index, asyncio.current_task()))

    async def close(self) -> None:
        return None


async def test_every_frame_reaches_the_backend_once_and_in_order(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    backend = PickyBackend()
    audio = b"".join(_frame(i) for i in range(60))
    async with start_app(media_backend="echo") as live:
        live.services.backend_factory = lambda settings: backend
        script = StreamScript(audio=audio, loop=False)
        async with open_stream(live, script=script) as stream:
            await stream.wait_for(lambda s: len(backend.got) >= 60, timeout=10)
    assert [index for index, _ in backend.got] == list(range(60))
    task_of = dict(backend.got)
    # Frame 1 was handled on the spot (the reader's task); frame 30 waited and was finished by
    # the feeder, and frame 31, which arrived meanwhile, was queued behind it, not run out of turn.
    assert task_of[1] is not task_of[30]
    assert task_of[31] is task_of[30]


class BuggyBackend(PickyBackend):
    """A plug-in with a bug: a KeyError on frame 10, raised at once (`fast`) or after waiting."""

    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast
        self.closed = False

    async def receive(self, event: InboundEvent) -> None:
        if not self.fast:
            await asyncio.sleep(0)
        if type(event) is AudioIn and int.from_bytes(event.pcm[:2], "little") == 10:
            raise KeyError("frame 10")

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fast", [True, False])
async def test_a_backend_bug_ends_the_media_session_with_1011_not_an_asgi_error(
    start_app: AppFactory, open_stream: StreamFactory, fast: bool
) -> None:
    backend = BuggyBackend(fast)
    audio = b"".join(_frame(i) for i in range(50))
    async with start_app(media_backend="echo") as live:
        live.services.backend_factory = lambda settings: backend
        script = StreamScript(audio=audio, loop=False)
        async with open_stream(live, call_connection_id=f"buggy-{fast}", script=script) as stream:
            await stream.wait_closed(timeout=5)
            assert stream.close_code == 1011
            assert stream.close_reason == "backend failed: KeyError"
        assert backend.closed
        for _ in range(100):
            record = (await live.client.get(f"/api/calls/buggy-{fast}")).json()
            if record["media"]["connected"] is False:
                break
            await asyncio.sleep(0.02)
        assert record["media"]["close_reason"] == "backend failed: KeyError"
