"""Caller audio kept while the downstream is away is replayed between `replay` and `live`
markers, so a real-time downstream can skip it (measured with a real-time echo and the
bridge's own pacer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from app.backends import websocket
from app.backends.base import AudioIn, CallContext, StreamFormat
from app.backends.websocket import WebSocketBackend
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import OutboundItem
from tests.backends.realtime.conftest import FakeActions

# --- audio kept across a reconnect: marked as replayed, so a real-time downstream skips it ----

FRAME_SAMPLES = 320  # 20 ms at 16 kHz


def seq_frame(seq: int) -> bytes:
    """A caller frame that says which one it is: every sample holds its sequence number."""
    return np.full(FRAME_SAMPLES, seq, dtype="<i2").tobytes()


def frame_seq(frame: bytes) -> int:
    return int(np.frombuffer(frame, dtype="<i2")[0])


@dataclass
class RealTimeEcho:
    """A downstream that echoes the caller's audio; skips replayed audio if it `honours_markers`,
    refuses connections while `refusing`. `heard` lists, per connection, what arrived: frame
    sequence numbers, ("replay", ms) and ("live", 0)."""

    honours_markers: bool
    server: Server | None = None
    refusing: bool = False
    refused: int = 0
    connections: list[ServerConnection] = field(default_factory=list)
    heard: list[list[int | tuple[str, int]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/echo"

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self.refusing:
            return None
        self.refused += 1
        self.changed.set()
        return connection.respond(503, "away\n")

    async def handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        heard: list[int | tuple[str, int]] = []
        self.heard.append(heard)
        replaying = False
        async for message in connection:
            if isinstance(message, bytes):
                heard.append(frame_seq(message))
                if not (replaying and self.honours_markers):
                    await connection.send(message)
            else:
                control = json.loads(message)
                if control["type"] in ("replay", "live"):
                    replaying = control["type"] == "replay"
                    heard.append((control["type"], int(control.get("ms", 0))))
            self.changed.set()

    async def wait_for(self, predicate: Callable[[RealTimeEcho], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


@dataclass
class EchoRun:
    """What a call through a `RealTimeEcho` heard back, across one downstream reconnect."""

    echoed: list[tuple[int, int]]  # (frame echoed, latest frame the caller had sent by then)
    last_before_drop: int  # the last frame echoed by the first connection
    after: list[int | tuple[str, int]]  # what the second connection received

    def delay_frames(self, echoed: list[tuple[int, int]]) -> float:
        """The echo delay, in frames: how far behind the caller the echo is sent to ACS."""
        return float(np.median([sent - seq for seq, sent in echoed]))

    @property
    def before(self) -> list[tuple[int, int]]:
        return [pair for pair in self.echoed if pair[0] <= self.last_before_drop]

    @property
    def since_reconnect(self) -> list[tuple[int, int]]:
        return [pair for pair in self.echoed if pair[0] > self.last_before_drop]


async def echo_across_a_reconnect(echo: RealTimeEcho) -> EchoRun:
    """A 16 kHz call at real time through `echo` and the bridge's real pacer: 0.5 s live, a
    drop with at least 0.6 s away (audio kept meanwhile), then 1 s live after the reconnect."""
    echoed: list[tuple[int, int]] = []
    fed = -1

    async def sink(item: OutboundItem) -> None:
        if isinstance(item, bytes):
            echoed.append((frame_seq(item), fed))

    pacer = OutboundPacer(FRAME_SAMPLES * 2)
    output = SessionOutput(
        pacer, None, enabled=True, on_event=lambda e: None, on_end=lambda r: None
    )
    backend = WebSocketBackend(echo.url)
    loop = asyncio.get_running_loop()

    async def feed_until(done: Callable[[], bool], within_s: float = 10.0) -> None:
        nonlocal fed
        async with asyncio.timeout(within_s):
            while not done():
                fed += 1
                await backend.receive(AudioIn(seq_frame(fed)))
                await asyncio.sleep(max(0.0, start + (fed + 1) * 0.02 - loop.time()))

    pacing = asyncio.create_task(pacer.run(sink))
    await backend.open(CallContext("ws-echo", None, StreamFormat(16000)), output, FakeActions())
    try:
        await echo.wait_for(lambda e: bool(e.connections), within_s=5)
        start = loop.time()
        await feed_until(lambda: len(echoed) >= 25)
        echo.refusing = True
        await echo.connections[0].close()
        await feed_until(lambda: echo.refused >= 1)
        away_from = fed
        await feed_until(lambda: fed >= away_from + 30)
        echo.refusing = False
        await feed_until(lambda: len(echo.heard) == 2 and live_frames(echo.heard[1]) >= 50)
    finally:
        await backend.close()
        pacing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pacing
    return EchoRun(echoed, max(seq for seq in echo.heard[0] if isinstance(seq, int)), echo.heard[1])


def live_frames(heard: list[int | tuple[str, int]]) -> int:
    """Frames after the last `live` marker (all of them if there was none)."""
    marks = [index for index, entry in enumerate(heard) if entry == ("live", 0)]
    rest = heard[marks[-1] + 1 :] if marks else heard
    return sum(isinstance(entry, int) for entry in rest)


def replay_blocks(heard: list[int | tuple[str, int]]) -> list[tuple[int, list[int]]]:
    """(announced ms, frames) of each replay ... live block."""
    blocks: list[tuple[int, list[int]]] = []
    replaying: list[int] | None = None
    for entry in heard:
        if isinstance(entry, tuple):
            if entry[0] == "replay":
                replaying = []
                blocks.append((entry[1], replaying))
            else:
                replaying = None
        elif replaying is not None:
            replaying.append(entry)
    return blocks


async def test_audio_kept_across_a_reconnect_is_marked_as_replayed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.05)
    echo = RealTimeEcho(honours_markers=True)
    async with serve(echo.handler, "127.0.0.1", 0, process_request=echo.process_request) as srv:
        echo.server = srv
        run = await echo_across_a_reconnect(echo)
    blocks = replay_blocks(run.after)
    replayed = [seq for _, frames in blocks for seq in frames]
    frames = [entry for entry in run.after if isinstance(entry, int)]
    assert run.after[0] == ("replay", 20 * len(blocks[0][1]))
    assert all(ms == 20 * len(block) for ms, block in blocks)
    assert len(replayed) >= 30  # the 0.6 s away at least, at most the last second
    assert len(replayed) <= 50
    # Replayed audio first, oldest first, then the live audio: every frame from the first kept.
    assert frames == list(range(frames[0], frames[0] + len(frames)))
    assert frames[: len(replayed)] == replayed


async def test_a_real_time_echo_that_skips_replayed_audio_has_no_added_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.05)
    echo = RealTimeEcho(honours_markers=True)
    async with serve(echo.handler, "127.0.0.1", 0, process_request=echo.process_request) as srv:
        echo.server = srv
        run = await echo_across_a_reconnect(echo)
    replayed = {seq for _, frames in replay_blocks(run.after) for seq in frames}
    first_live = max(replayed) + 1
    # The first frame echoed after the reconnect is a live one; no replayed frame comes back.
    assert run.since_reconnect[0][0] == first_live
    assert not replayed & {seq for seq, _ in run.echoed}
    before = run.delay_frames(run.before)
    after = run.delay_frames(run.since_reconnect[-25:])
    assert after <= before + 2  # not the ~len(replayed) frames of a replay played at real time


async def test_a_real_time_echo_that_ignores_the_markers_stays_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the markers are for: played like live audio, the replay delays the rest of the call."""
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.05)
    echo = RealTimeEcho(honours_markers=False)
    async with serve(echo.handler, "127.0.0.1", 0, process_request=echo.process_request) as srv:
        echo.server = srv
        run = await echo_across_a_reconnect(echo)
    replayed = [seq for _, frames in replay_blocks(run.after) for seq in frames]
    assert run.since_reconnect[0][0] == replayed[0]
    before = run.delay_frames(run.before)
    after = run.delay_frames(run.since_reconnect[-25:])
    assert after >= before + len(replayed) // 2
