"""End to end: Event Grid -> answer (real SDK) -> callbacks -> REST control -> hang up."""

from __future__ import annotations

import asyncio

from app.emulator import AcsEmulator
from tests.conftest import AppFactory, LiveApp, answered_call, call_state


async def test_incoming_call_is_answered_with_media_options_from_settings(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    body = emulator.calls[call_id].answer_body
    assert body is not None
    media = body["mediaStreamingOptions"]
    assert media["transportType"] == "websocket"
    assert media["contentType"] == "audio"
    assert media["audioChannelType"] == "mixed"
    assert media["audioFormat"] == "pcm16KMono"
    assert media["startMediaStreaming"] is True
    assert media["enableBidirectional"] is True
    assert media["transportUrl"].startswith(
        f"ws://127.0.0.1:{live_app.base_url.rsplit(':', 1)[1]}/ws"
    )
    assert body["callbackUri"].startswith(f"{live_app.base_url}/api/callbacks")
    assert body["operationContext"].startswith("answer:")


async def test_media_settings_reach_the_answer(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(
        media_audio_format="pcm24KMono",
        media_audio_channel="unmixed",
        media_start_on_answer=False,
        media_bidirectional=False,
        media_dtmf=True,
    ) as live:
        call_id = await answered_call(live, emulator)
        media = emulator.calls[call_id].answer_body["mediaStreamingOptions"]  # type: ignore[index]
        assert media["audioFormat"] == "pcm24KMono"
        assert media["audioChannelType"] == "unmixed"
        assert media["startMediaStreaming"] is False
        assert media["enableBidirectional"] is False
        assert media["enableDtmfTones"] is True
        await call_state(live, call_id, connection_state="connected", media_state="disabled")


async def test_full_call_lifecycle_through_callbacks_and_control_api(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    record = await call_state(live_app, call_id, connection_state="connected", media_state="active")
    assert record["caller"] == "4:+14255550123"
    assert record["direction"] == "inbound"
    assert record["correlation_id"] == emulator.calls[call_id].correlation_id

    stop = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert stop.status_code == 202, stop.text
    await call_state(live_app, call_id, media_state="stopped")
    assert emulator.calls[call_id].media_state == "inactive"

    start = await live_app.client.post(f"/api/calls/{call_id}/media/start")
    assert start.status_code == 202, start.text
    await call_state(live_app, call_id, media_state="active")

    listed = (await live_app.client.get("/api/calls")).json()
    assert [c["call_connection_id"] for c in listed] == [call_id]

    hang_up = await live_app.client.delete(f"/api/calls/{call_id}")
    assert hang_up.status_code == 202, hang_up.text
    final = await call_state(live_app, call_id, connection_state="disconnected")
    assert final["media_state"] == "stopped"
    events = final["recent_events"]
    assert isinstance(events, list)
    types = [e["type"] for e in events]
    assert "CallDisconnected" in types
    assert "MediaStreamingStopped" in types


async def test_remote_hang_up_marks_the_call_disconnected(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    await emulator.remote_hang_up(call_id)
    await call_state(live_app, call_id, connection_state="disconnected")


async def test_duplicate_deliveries_answer_once(live_app: LiveApp, emulator: AcsEmulator) -> None:
    delivery = await emulator.place_incoming_call(live_app.webhook_url, deliveries=3)
    assert [d.status for d in delivery.deliveries] == [200, 200, 200]
    answers = [r for r in emulator.requests if r.path.endswith(":answer")]
    assert len(answers) == 1
    assert sum(d.body.count('"duplicates":1') for d in delivery.deliveries) == 2


async def test_concurrent_duplicate_deliveries_answer_once(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    delivery = await emulator.place_incoming_call(live_app.webhook_url)
    body = delivery.event
    responses = await asyncio.gather(
        *(live_app.client.post("/api/incomingCall", json=[body]) for _ in range(5))
    )
    assert all(r.status_code == 200 for r in responses)
    answers = [r for r in emulator.requests if r.path.endswith(":answer")]
    assert len(answers) == 1


async def test_cloudevents_schema_delivery_is_answered(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    delivery = await emulator.place_incoming_call(live_app.webhook_url, schema="cloudevents")
    assert delivery.deliveries[0].status == 200
    call = await emulator.call_for_context(delivery.incoming_call_context)
    assert call is not None
    assert call.state == "connected"


async def test_outbound_call_is_placed_with_media_streaming(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    response = await live_app.client.post(
        "/api/calls", json={"target": "+14255550199", "source_caller_id": "+18005550100"}
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["direction"] == "outbound"
    assert record["callee"] == "+14255550199"
    call_id = record["call_connection_id"]
    create_body = emulator.calls[call_id].answer_body
    assert create_body is not None
    assert create_body["mediaStreamingOptions"]["audioFormat"] == "pcm16KMono"
    await call_state(live_app, call_id, connection_state="connected")


async def test_failed_media_start_is_kept_with_its_details(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    emulator.fail_next_media_start("initialWebSocketConnectionFailed")
    call_id = await answered_call(live_app, emulator)
    record = await call_state(live_app, call_id, media_state="failed")
    failure = record["media_failure"]
    assert isinstance(failure, dict)
    assert failure["status_details"] == "initialWebSocketConnectionFailed"
    assert failure["code"] == 500
    assert failure["sub_code"] == 8603
