"""The websocket backend keeps the promises of docs/websocket-backend.md: answers in the order
asked, distinct error texts, DTMF keys spelled as characters, `stop` then a 1000 close, and the
media stream's interruptions passed on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.utils import accept_key

from app.backends import websocket, websocket_actions
from app.backends.base import AudioIn, CallContext, DtmfIn, StreamFormat
from app.backends.websocket import WebSocketBackend
from app.backends.websocket_messages import (
    DEFAULT_END_REASON,
    ActionRequest,
    AgentTranscript,
    EndSession,
    MalformedMessage,
    StopAudio,
    parse_control,
)
from app.emulator import AcsEmulator
from tests.backends.realtime.conftest import FakeActions, FakeOutput
from tests.backends.websocket_downstream import (
    Downstream,
    GatedActions,
    backend_for,
    ok_result,
    serving,
)
from tests.conftest import AppFactory, answered_call, call_state, media_client


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    async with serving() as service:
        yield service


# --- answers come in the order the messages were sent ------------------------------------------


async def test_a_malformed_message_is_answered_after_an_earlier_action(
    downstream: Downstream,
) -> None:
    actions = GatedActions()
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps({"type": "transfer", "target": "sales", "id": "t"}))
        await connection.send("not json")
        await connection.send(json.dumps({"type": "teleport", "id": "x"}))
        actions.gate.set()
        await downstream.wait_for(lambda d: len(d.results()) == 3)
    assert [(r.get("id"), r["code"]) for r in downstream.results()] == [
        ("t", None),
        (None, "invalid_json"),
        ("x", "unknown_type"),
    ]


async def test_answers_waiting_beyond_the_bound_hold_the_reader_but_none_is_lost(
    downstream: Downstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket_actions, "QUEUED_ANSWERS", 2)
    actions = GatedActions()
    async with backend_for(downstream, actions) as (_, output, connection):
        await connection.send(json.dumps({"type": "send_dtmf", "tones": "1", "id": "first"}))
        for index in range(6):
            await connection.send(json.dumps({"type": "nope", "id": str(index)}))
        await connection.send(b"\x01\x00" * 320)
        actions.gate.set()
        await downstream.wait_for(lambda d: len(d.results()) == 7)
        await output.wait_for(lambda o: len(o.played[None]) == 640)
    assert [r["id"] for r in downstream.results()] == ["first", "0", "1", "2", "3", "4", "5"]


# --- refusals say precisely what is wrong -------------------------------------------------------


async def test_not_json_and_not_an_object_are_refused_with_different_texts(
    downstream: Downstream,
) -> None:
    async with backend_for(downstream) as (_, _, connection):
        await connection.send("hang up please")
        await connection.send("[1, 2]")
        await connection.send('{"target": "sales"}')
        await downstream.wait_for(lambda d: len(d.results()) == 3)
    not_json, not_object, no_type = downstream.results()
    assert not_json["code"] == "invalid_json"
    assert str(not_json["error"]).startswith("the text frame is not JSON")
    assert not_object == {
        **not_json,
        "code": "invalid_message",
        "error": "the JSON must be an object, not an array",
    }
    assert (no_type["code"], no_type["error"]) == (
        "invalid_message",
        'the object needs a string "type"',
    )


async def test_a_refusal_carries_back_the_string_id_of_what_it_refuses(
    downstream: Downstream,
) -> None:
    async with backend_for(downstream) as (_, _, connection):
        await connection.send(json.dumps({"id": "no-type"}))
        await downstream.wait_for(lambda d: bool(d.results()))
    assert downstream.results()[0]["id"] == "no-type"


async def test_a_transcript_without_text_is_refused(downstream: Downstream) -> None:
    async with backend_for(downstream) as (_, output, connection):
        await connection.send(json.dumps({"type": "transcript", "text": 5}))
        await connection.send(json.dumps({"type": "transcript", "text": "Hello."}))
        await downstream.wait_for(lambda d: bool(d.results()))
        await output.wait_for(lambda o: bool(o.reported("transcript")))
    assert downstream.results()[0]["code"] == "invalid_field"
    assert downstream.results()[0]["action"] == "transcript"
    assert output.reported("transcript") == [{"role": "agent", "text": "Hello."}]


def test_every_control_message_parses_to_what_it_asks() -> None:
    assert parse_control('{"type": "stop_audio", "id": 3}') == StopAudio()
    assert parse_control('{"type": "end"}') == EndSession(DEFAULT_END_REASON)
    assert parse_control('{"type": "end", "reason": "bye"}') == EndSession("bye")
    assert parse_control('{"type": "transcript", "text": "Hi"}') == AgentTranscript("Hi")
    assert parse_control('{"type": "hang_up", "id": "h"}') == ActionRequest("hang_up", id="h")
    assert parse_control('{"type": "send_dtmf", "tones": " 1# "}') == ActionRequest(
        "send_dtmf", "1#"
    )


def test_deeply_nested_json_is_refused_not_raised() -> None:
    with pytest.raises(MalformedMessage) as refused:
        parse_control("[" * 100_000)
    assert refused.value.code == "invalid_json"


# --- DTMF keys as characters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tone", "key"),
    [("5", "5"), ("#", "#"), ("*", "*"), ("pound", "#"), ("asterisk", "*"), ("b", "B")],
)
async def test_dtmf_reaches_the_downstream_as_its_key(
    downstream: Downstream, tone: str, key: str
) -> None:
    async with backend_for(downstream) as (backend, _, _):
        await backend.receive(DtmfIn(tone, "4:+14255550123"))
        await downstream.wait_for(lambda d: bool(d.controls))
    dtmf = {"type": "dtmf", "digit": key, "participant": "4:+14255550123"}
    assert downstream.controls == [dtmf, {"type": "stop"}]


async def test_a_tone_that_names_no_key_is_not_passed_on(downstream: Downstream) -> None:
    async with backend_for(downstream) as (backend, _, _):
        await backend.receive(DtmfIn("bogus"))
        await backend.receive(DtmfIn("1"))
        await downstream.wait_for(lambda d: bool(d.controls))
    dtmf = {"type": "dtmf", "digit": "1", "participant": None}
    assert downstream.controls == [dtmf, {"type": "stop"}]


# --- the end of the call's media ----------------------------------------------------------------


async def test_stop_is_the_last_message_then_the_bridge_closes_with_1000(
    downstream: Downstream,
) -> None:
    async with backend_for(downstream) as (_, _, connection):
        await connection.send(json.dumps({"type": "hang_up"}))
        await downstream.wait_for(lambda d: bool(d.results()))
    await downstream.wait_for(lambda d: bool(d.closings))
    assert downstream.results() == [ok_result("hang_up", "test:hang_up")]
    assert downstream.closings == [(1000, '{"type": "stop"}')]


async def test_an_interrupted_acs_stream_is_passed_on_as_call_events(
    start_app: AppFactory, emulator: AcsEmulator, downstream: Downstream
) -> None:
    async with start_app(
        media_backend="websocket", backend_ws_url=downstream.url, media_resume_window_s=5
    ) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await downstream.wait_for(lambda d: d.audio_frames >= 10)
        stream.drop()
        await downstream.wait_for(lambda d: len(call_events(d)) >= 2)
        frames_when_resumed = downstream.audio_frames
        await downstream.wait_for(lambda d: d.audio_frames >= frames_when_resumed + 10)
        await emulator.remote_hang_up(call_id)
        await downstream.wait_for(lambda d: bool(d.closings))
    assert call_events(downstream)[:2] == [
        {"type": "call_event", "event": "MediaStreamInterrupted"},
        {"type": "call_event", "event": "MediaStreamResumed"},
    ]
    assert len(downstream.starts) == 1  # the same downstream connection throughout


def call_events(downstream: Downstream) -> list[dict[str, object]]:
    return [control for control in downstream.controls if control["type"] == "call_event"]


async def test_close_does_not_hang_on_a_downstream_that_stopped_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "GOODBYE_TIMEOUT_S", 0.2)
    async with deaf_server() as url:
        backend = WebSocketBackend(url)
        output = FakeOutput()
        await backend.open(CallContext("ws-deaf", None, StreamFormat(16000)), output, FakeActions())
        await output.wait_for(lambda o: bool(o.reported("connected")))
        feeding = asyncio.create_task(feed_until_blocked(backend))
        await asyncio.wait_for(feeding, 30)
        async with asyncio.timeout(5):  # without a bound on the goodbye, close never returns
            await backend.close()


async def feed_until_blocked(backend: WebSocketBackend) -> None:
    """Send caller audio until a frame cannot be sent (the socket's buffers are full)."""
    frame = AudioIn(b"\x00\x01" * 8000)
    while True:
        sending = asyncio.ensure_future(backend.receive(frame))
        done, _ = await asyncio.wait([sending], timeout=0.2)
        if not done:
            sending.cancel()
            return


@asynccontextmanager
async def deaf_server() -> AsyncIterator[str]:
    """A downstream that accepts the WebSocket handshake, then never reads again."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
        )
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/deaf"
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
