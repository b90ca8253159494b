"""SDK errors mapped to honest HTTP answers, with JSON bodies."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.emulator import AcsEmulator
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.services import Services
from tests.conftest import (
    CONTROL_API_KEY,
    AppFactory,
    LiveApp,
    answered_call,
    app_settings,
    call_state,
)


async def test_unknown_call_is_404_without_asking_acs(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    for method, path in [
        ("GET", "/api/calls/nope"),
        ("POST", "/api/calls/nope/media/start"),
        ("POST", "/api/calls/nope/media/stop"),
        ("DELETE", "/api/calls/nope"),
        ("POST", "/api/calls/nope/audio/stop"),
    ]:
        response = await live_app.client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "call_not_found"
    assert emulator.requests == []


async def test_start_on_active_stream_is_409(live_app: LiveApp, emulator: AcsEmulator) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    response = await live_app.client.post(f"/api/calls/{call_id}/media/start")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "media_already_active"


async def test_stop_on_stopped_stream_is_409(live_app: LiveApp, emulator: AcsEmulator) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    assert (await live_app.client.post(f"/api/calls/{call_id}/media/stop")).status_code == 202
    await call_state(live_app, call_id, media_state="stopped")
    response = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "media_not_active"


async def test_actions_on_an_ended_call_are_409_without_asking_acs(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    await emulator.remote_hang_up(call_id)
    await call_state(live_app, call_id, connection_state="disconnected")
    asked = len(emulator.requests)
    hang_up = await live_app.client.delete(f"/api/calls/{call_id}")
    assert hang_up.status_code == 409
    assert hang_up.json() == {
        "error": {"code": "call_ended", "message": "the call has already ended"}
    }
    start = await live_app.client.post(f"/api/calls/{call_id}/media/start")
    assert start.status_code == 409
    assert start.json() == {
        "error": {"code": "call_not_connected", "message": "the call is disconnected"}
    }
    assert len(emulator.requests) == asked


async def test_stop_audio_without_a_media_socket_is_409(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(media_start_on_answer=False) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected")
        response = await live.client.post(f"/api/calls/{call_id}/audio/stop")
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "no_media_socket", "message": "no instance holds the call's media"}
    }


async def test_acs_conflict_maps_to_409_and_restores_state(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    emulator.add_fault("stopMediaStreaming", status=409)
    response = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    await call_state(live_app, call_id, media_state="active")


async def test_acs_failure_maps_to_502(live_app: LiveApp, emulator: AcsEmulator) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    emulator.add_fault("stopMediaStreaming", status=400, error_code="8501")
    response = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert response.status_code == 502
    body = response.json()["error"]
    assert body["code"] == "acs_error"
    assert "accesskey" not in response.text.lower()


async def test_acs_not_found_on_hang_up_maps_to_404(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    emulator.add_fault("hangup", status=404)
    response = await live_app.client.delete(f"/api/calls/{call_id}")
    assert response.status_code == 404


async def test_wrong_access_key_maps_to_502(start_app: AppFactory, emulator: AcsEmulator) -> None:
    bad = f"endpoint={emulator.endpoint}/;accesskey=" + "QUJD" * 11
    async with start_app(acs_connection_string=bad) as live:
        response = await live.client.post("/api/calls", json={"target": "8:acs:someone"})
        assert response.status_code == 502
        assert "QUJD" not in response.text


async def test_answer_failure_is_502_and_a_retry_answers(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    emulator.add_fault("answer", status=400)
    delivery = await emulator.place_incoming_call(live_app.webhook_url)
    assert delivery.deliveries[0].status == 502
    # Event Grid retries the same event: the released claim lets it through.
    retry = await live_app.client.post("/api/incomingCall", json=[delivery.event])
    assert retry.status_code == 200
    assert len(retry.json()["answered"]) == 1


async def test_transient_acs_errors_are_retried_by_the_sdk(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    emulator.add_fault("stopMediaStreaming", status=503, retry_after=0.01)
    response = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert response.status_code == 202


async def test_without_acs_settings_calls_are_placed_through_the_embedded_emulator() -> None:
    sock = bind_socket()
    settings = app_settings(sock.getsockname()[1], None)
    app = create_app(settings)
    async with (
        serve_in_background(app, sock=sock, settings=settings) as server,
        httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": CONTROL_API_KEY}) as c,
    ):
        response = await c.post("/api/calls", json={"target": "+14255550123"})
        assert response.status_code == 201, response.text
        services: Services = app.state.services
        assert services.emulator is not None  # the lifespan started one as the app's ACS
        assert services.emulator.calls[response.json()["call_connection_id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"target": "not-a-number"},
        {"target": "+1425", "source_caller_id": "x"},
        {},
        {"target": 5},
        {"target": "+14255550123", "media": {"audio_format": "mp3"}},
        {"target": "+14255550123", "surprise": True},
    ],
)
async def test_invalid_place_call_bodies_are_400(
    live_app: LiveApp, body: dict[str, object]
) -> None:
    response = await live_app.client.post("/api/calls", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_concurrent_control_requests_do_not_500(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    responses = await asyncio.gather(
        *(live_app.client.post(f"/api/calls/{call_id}/media/stop") for _ in range(4))
    )
    assert sorted(r.status_code for r in responses)[0] == 202
    assert all(r.status_code in (202, 409) for r in responses)
