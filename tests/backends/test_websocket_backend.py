"""The websocket backend against a real downstream server, including drops and reconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from app.emulator.media_client import StreamScript, tone
from tests.conftest import AppFactory
from tests.media.conftest import StreamFactory


@dataclass
class Downstream:
    """A downstream service that echoes audio and records control messages."""

    server: Server | None = None
    starts: list[dict[str, object]] = field(default_factory=list)
    controls: list[dict[str, object]] = field(default_factory=list)
    audio_frames: int = 0
    connections: list[ServerConnection] = field(default_factory=list)
    drop_after_frames: int | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/agent"

    async def handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        async for message in connection:
            if isinstance(message, bytes):
                self.audio_frames += 1
                await connection.send(message)
                if (
                    self.drop_after_frames is not None
                    and self.audio_frames == self.drop_after_frames
                ):
                    await connection.close()
                    return
            else:
                decoded = json.loads(message)
                (self.starts if decoded["type"] == "start" else self.controls).append(decoded)


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    service = Downstream()
    async with serve(service.handler, "127.0.0.1", 0) as server:
        service.server = server
        yield service


async def test_audio_round_trips_through_the_downstream(
    start_app: AppFactory, open_stream: StreamFactory, downstream: Downstream
) -> None:
    audio = tone(16000, 1.0)
    script = StreamScript(audio=audio, loop=False, dtmf=[(3, "5")])
    async with (
        start_app(media_backend="websocket", backend_ws_url=downstream.url) as live,
        open_stream(live, call_connection_id="ws-1", script=script) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 40, timeout=5)
        received = b"".join(f.pcm for f in stream.audio_received)
        assert audio.startswith(received[: 640 * 30])
    start = downstream.starts[0]
    assert start["callConnectionId"] == "ws-1"
    assert start["sampleRate"] == 16000
    assert start["resumed"] is False
    assert {"type": "dtmf", "digit": "5", "participant": None} in downstream.controls


async def test_downstream_rate_is_resampled(
    start_app: AppFactory, open_stream: StreamFactory, downstream: Downstream
) -> None:
    async with (
        start_app(
            media_backend="websocket", backend_ws_url=downstream.url, backend_ws_sample_rate=24000
        ) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 20, timeout=5)
        assert all(len(f.pcm) == 640 for f in stream.audio_received)
    assert downstream.starts[0]["sampleRate"] == 24000


async def test_a_dropped_downstream_reconnects_without_dropping_the_call(
    start_app: AppFactory, open_stream: StreamFactory, downstream: Downstream
) -> None:
    downstream.drop_after_frames = 10
    async with (
        start_app(media_backend="websocket", backend_ws_url=downstream.url) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 10, timeout=5)
        for _ in range(200):
            if len(downstream.starts) >= 2:
                break
            await asyncio.sleep(0.02)
        assert len(downstream.starts) >= 2
        assert downstream.starts[1]["resumed"] is True
        before = len(stream.audio_received)
        await stream.wait_for(lambda s: len(s.audio_received) >= before + 10, timeout=5)
        assert not stream.closed


async def test_downstream_stop_audio_reaches_acs(
    start_app: AppFactory, open_stream: StreamFactory, downstream: Downstream
) -> None:
    async with (
        start_app(media_backend="websocket", backend_ws_url=downstream.url) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 5, timeout=5)
        await downstream.connections[-1].send(json.dumps({"type": "stop_audio"}))
        await stream.wait_for(lambda s: any(r.kind == "stop" for r in s.received), timeout=5)


async def test_unreachable_downstream_keeps_the_call_up(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with (
        start_app(media_backend="websocket", backend_ws_url="ws://127.0.0.1:9/nothing") as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 0.5))) as stream,
    ):
        await asyncio.sleep(0.5)
        assert not stream.closed
