"""The websocket backend against a real downstream server, including drops and reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from app.backends import websocket
from app.backends.base import (
    ActionAccepted,
    ActionFailed,
    AudioIn,
    CallContext,
    CallEventIn,
    StreamFormat,
)
from app.backends.websocket import WebSocketBackend
from app.emulator.media_client import StreamScript, tone
from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import OutboundItem
from tests.backends.realtime.conftest import FakeActions, FakeOutput
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
    changed: asyncio.Event = field(default_factory=asyncio.Event)

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
                self.changed.set()

    def results(self) -> list[dict[str, object]]:
        return [control for control in self.controls if control["type"] == "action_result"]

    async def wait_for(
        self, predicate: Callable[[Downstream], bool], within_s: float = 5.0
    ) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


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


# --- call actions asked for by the downstream ------------------------------------------------


class RefusingActions(FakeActions):
    """Call actions whose transfers are refused, as an unconfigured destination is."""

    async def transfer(self, target: str) -> ActionAccepted:
        self.calls.append(("transfer", target))
        raise ActionFailed("destination_not_allowed", "transfers may only go to: sales")


class GatedActions(FakeActions):
    """Call actions that each wait for `gate` (a slow ACS request)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def transfer(self, target: str) -> ActionAccepted:
        self.started.set()
        await self.gate.wait()
        return await super().transfer(target)

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        self.started.set()
        await self.gate.wait()
        return await super().send_dtmf(tones)


class BrokenActions(FakeActions):
    """Call actions that fail in a way nobody expected."""

    async def hang_up(self) -> ActionAccepted:
        raise RuntimeError("surprise")


@asynccontextmanager
async def backend_for(
    downstream: Downstream, actions: FakeActions
) -> AsyncIterator[tuple[WebSocketBackend, FakeOutput, ServerConnection]]:
    """A WebSocketBackend connected to `downstream`, with its downstream connection."""
    backend = WebSocketBackend(downstream.url)
    output = FakeOutput()
    await backend.open(CallContext("ws-actions", None, StreamFormat(16000)), output, actions)
    try:
        await downstream.wait_for(lambda d: bool(d.starts))
        yield backend, output, downstream.connections[-1]
    finally:
        await backend.close()


def ok_result(action: str, operation_context: str) -> dict[str, object]:
    return {
        "type": "action_result",
        "action": action,
        "ok": True,
        "error": None,
        "code": None,
        "operation_context": operation_context,
    }


@pytest.mark.parametrize(
    ("request_", "call", "operation_context"),
    [
        ({"type": "hang_up"}, ("hang_up", ""), "test:hang_up"),
        ({"type": "transfer", "target": "sales"}, ("transfer", "sales"), "test:transfer"),
        ({"type": "send_dtmf", "tones": "12#"}, ("send_dtmf", "12#"), "test:send_dtmf"),
    ],
)
async def test_a_downstream_action_is_performed_and_answered(
    downstream: Downstream,
    request_: dict[str, Any],
    call: tuple[str, str],
    operation_context: str,
) -> None:
    actions = FakeActions()
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps(request_))
        await downstream.wait_for(lambda d: bool(d.results()))
    assert actions.calls == [call]
    assert downstream.results() == [ok_result(request_["type"], operation_context)]


async def test_a_request_id_is_echoed_in_its_result(downstream: Downstream) -> None:
    async with backend_for(downstream, FakeActions()) as (_, _, connection):
        await connection.send(json.dumps({"type": "hang_up", "id": "bye-1"}))
        await downstream.wait_for(lambda d: bool(d.results()))
    assert downstream.results() == [{**ok_result("hang_up", "test:hang_up"), "id": "bye-1"}]


async def test_a_refused_action_answers_its_code_and_message(downstream: Downstream) -> None:
    actions = RefusingActions()
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps({"type": "transfer", "target": "+18005550199"}))
        await downstream.wait_for(lambda d: bool(d.results()))
    assert actions.calls == [("transfer", "+18005550199")]
    assert downstream.results() == [
        {
            "type": "action_result",
            "action": "transfer",
            "ok": False,
            "error": "transfers may only go to: sales",
            "code": "destination_not_allowed",
            "operation_context": None,
        }
    ]


async def test_an_unexpected_action_error_is_answered_and_later_actions_still_run(
    downstream: Downstream,
) -> None:
    actions = BrokenActions()
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps({"type": "hang_up"}))
        await connection.send(json.dumps({"type": "send_dtmf", "tones": "9"}))
        await downstream.wait_for(lambda d: len(d.results()) == 2)
    failed, sent = downstream.results()
    assert (failed["ok"], failed["code"], failed["action"]) == (False, "internal_error", "hang_up")
    assert sent == ok_result("send_dtmf", "test:send_dtmf")


@pytest.mark.parametrize(
    ("text", "action", "code"),
    [
        ("hang up please", None, "invalid_json"),
        ("[1, 2]", None, "invalid_message"),
        ('{"target": "sales"}', None, "invalid_message"),
        ('{"type": 3}', None, "invalid_message"),
        ('{"type": "teleport"}', "teleport", "unknown_type"),
        ('{"type": "transfer"}', "transfer", "invalid_field"),
        ('{"type": "transfer", "target": 42}', "transfer", "invalid_field"),
        ('{"type": "send_dtmf", "tones": "  "}', "send_dtmf", "invalid_field"),
        ('{"type": "hang_up", "id": 7}', "hang_up", "invalid_field"),
    ],
)
async def test_a_malformed_message_is_answered_and_the_backend_goes_on(
    downstream: Downstream, text: str, action: str | None, code: str
) -> None:
    actions = FakeActions()
    async with backend_for(downstream, actions) as (_, output, connection):
        await connection.send(text)
        await connection.send(json.dumps({"type": "hang_up"}))
        await connection.send(b"\x01\x00" * 320)
        await downstream.wait_for(lambda d: len(d.results()) == 2)
        await output.wait_for(lambda o: len(o.played[None]) == 640)
    refused, answered = downstream.results()
    assert refused["ok"] is False
    assert (refused["action"], refused["code"]) == (action, code)
    assert isinstance(refused["error"], str)
    assert refused["error"]
    assert answered == ok_result("hang_up", "test:hang_up")
    assert actions.calls == [("hang_up", "")]
    assert output.ended == []


async def test_a_slow_action_does_not_stall_the_downstream_and_results_keep_their_order(
    downstream: Downstream,
) -> None:
    actions = GatedActions()
    async with backend_for(downstream, actions) as (_, output, connection):
        await connection.send(json.dumps({"type": "transfer", "target": "sales"}))
        await connection.send(json.dumps({"type": "send_dtmf", "tones": "1"}))
        await connection.send(b"\x01\x00" * 320)
        await connection.send(json.dumps({"type": "stop_audio"}))
        await output.wait_for(lambda o: ("stop", None) in o.log)
        assert len(output.played[None]) == 640
        assert downstream.results() == []
        actions.gate.set()
        await downstream.wait_for(lambda d: len(d.results()) == 2)
    assert [result["action"] for result in downstream.results()] == ["transfer", "send_dtmf"]


async def test_too_many_waiting_actions_are_refused(downstream: Downstream) -> None:
    actions = GatedActions()
    accepted = websocket.QUEUED_ACTIONS + 1  # one in progress, the rest waiting
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps({"type": "send_dtmf", "tones": "1"}))
        await asyncio.wait_for(actions.started.wait(), 5)
        for _ in range(websocket.QUEUED_ACTIONS + 1):
            await connection.send(json.dumps({"type": "send_dtmf", "tones": "1"}))
        await downstream.wait_for(lambda d: len(d.results()) == 1)
        assert downstream.results()[0]["code"] == "too_many_actions"
        actions.gate.set()
        await downstream.wait_for(lambda d: len(d.results()) == accepted + 1)
    assert len(actions.calls) == accepted


async def test_close_lets_a_running_action_finish(downstream: Downstream) -> None:
    actions = GatedActions()
    async with backend_for(downstream, actions) as (backend, _, connection):
        await connection.send(json.dumps({"type": "transfer", "target": "sales"}))
        await asyncio.wait_for(actions.started.wait(), 5)
        asyncio.get_running_loop().call_later(0.1, actions.gate.set)
        await backend.close()
    assert actions.calls == [("transfer", "sales")]


async def test_close_gives_up_on_an_action_that_never_finishes(
    downstream: Downstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket, "ACTIONS_GRACE_S", 0.05)
    actions = GatedActions()
    async with backend_for(downstream, actions) as (backend, _, connection):
        await connection.send(json.dumps({"type": "transfer", "target": "sales"}))
        await asyncio.wait_for(actions.started.wait(), 5)
        async with asyncio.timeout(1):
            await backend.close()
    assert actions.calls == []


# --- call events passed on to the downstream --------------------------------------------------


async def test_a_call_event_is_forwarded_to_the_downstream(downstream: Downstream) -> None:
    data = {"operation_context": "transfer:1", "code": 400, "sub_code": 7504, "message": "busy"}
    async with backend_for(downstream, FakeActions()) as (backend, _, _):
        await backend.receive(CallEventIn("CallTransferFailed", data))
        await downstream.wait_for(lambda d: bool(d.controls))
    assert downstream.controls[0] == {"type": "call_event", "event": "CallTransferFailed", **data}


async def test_a_call_event_during_a_reconnect_is_sent_after_start(
    downstream: Downstream,
) -> None:
    data = {"operation_context": "dtmf:1", "code": 200, "sub_code": 0, "message": "ok"}
    backend = WebSocketBackend(downstream.url)
    await backend.receive(CallEventIn("SendDtmfTonesCompleted", data))
    await backend.open(
        CallContext("ws-later", None, StreamFormat(16000)), FakeOutput(), FakeActions()
    )
    try:
        await downstream.wait_for(lambda d: bool(d.controls))
    finally:
        await backend.close()
    assert downstream.controls[0] == {
        "type": "call_event",
        "event": "SendDtmfTonesCompleted",
        **data,
    }


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
