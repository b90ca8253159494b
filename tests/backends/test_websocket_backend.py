"""The websocket backend against a real downstream server, including drops and reconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.backends import websocket_actions
from app.backends.base import CallContext, CallEventIn, StreamFormat
from app.backends.websocket import WebSocketBackend
from app.emulator.media_client import StreamScript, tone
from tests.backends.realtime.conftest import FakeActions, FakeOutput
from tests.backends.websocket_downstream import (
    BrokenActions,
    Downstream,
    GatedActions,
    RefusingActions,
    backend_for,
    ok_result,
    serving,
)
from tests.conftest import AppFactory
from tests.media.conftest import StreamFactory


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    async with serving() as service:
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


async def test_too_many_waiting_actions_are_refused_in_their_turn(
    downstream: Downstream,
) -> None:
    actions = GatedActions()
    accepted = websocket_actions.QUEUED_ACTIONS + 1  # one in progress, the rest waiting
    async with backend_for(downstream, actions) as (_, _, connection):
        await connection.send(json.dumps({"type": "send_dtmf", "tones": "1"}))
        await asyncio.wait_for(actions.started.wait(), 5)
        for index in range(websocket_actions.QUEUED_ACTIONS + 1):
            await connection.send(json.dumps({"type": "send_dtmf", "tones": "1", "id": str(index)}))
        actions.gate.set()
        await downstream.wait_for(lambda d: len(d.results()) == accepted + 1)
    assert len(actions.calls) == accepted
    *answered, refused = downstream.results()
    assert all(result["ok"] for result in answered)
    assert (refused["code"], refused["id"]) == (
        "too_many_actions",
        str(websocket_actions.QUEUED_ACTIONS),
    )


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
    monkeypatch.setattr(websocket_actions, "ACTIONS_GRACE_S", 0.05)
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
