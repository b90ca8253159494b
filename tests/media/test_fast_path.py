"""The reader hands audio straight to an `ImmediateReceiver` backend only while nothing is queued:
whichever path a frame takes, the backend sees every frame once and in order."""

from __future__ import annotations

import asyncio

import pytest

from app.backends.base import AudioIn, CallContext, InboundEvent, MediaOutput
from app.emulator.media_client import StreamScript
from tests.conftest import AppFactory, StreamFactory


def _frame(index: int) -> bytes:
    return index.to_bytes(2, "little") * 320


class PickyBackend:
    """Takes most frames on the spot; every third one needs `receive`, which waits a little
    (frame 30 longer than a frame's time, so the next frame arrives while it waits)."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.got: list[tuple[int, str]] = []

    async def open(self, call: CallContext, output: MediaOutput) -> None:
        return None

    def receive_nowait(self, event: InboundEvent) -> bool:
        if type(event) is AudioIn:
            index = int.from_bytes(event.pcm[:2], "little")
            if index % 3 == 0:
                return False
            self.got.append((index, "nowait"))
        return True

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is AudioIn:
            index = int.from_bytes(event.pcm[:2], "little")
            await asyncio.sleep(0.05 if index == 30 else 0.001)
            self.got.append((index, "receive"))

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
    paths = {path for _, path in backend.got}
    assert paths == {"nowait", "receive"}
    # Frame 31 arrived while frame 30's `receive` ran: queued behind it, not offered out of turn.
    assert dict(backend.got)[31] == "receive"


class BuggyBackend(PickyBackend):
    """A plug-in with a bug: a KeyError on frame 10, on whichever path the frame takes."""

    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast
        self.closed = False

    def receive_nowait(self, event: InboundEvent) -> bool:
        if not self.fast:
            return False
        self._check(event)
        return True

    async def receive(self, event: InboundEvent) -> None:
        self._check(event)

    def _check(self, event: InboundEvent) -> None:
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
