"""Who ended the call (`ended_by`), and a dropped stream that resumes whatever the callbacks
said so far: real sockets, the real SDK against the emulator."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from app.emulator import AcsEmulator
from tests.conftest import (
    AppFactory,
    LiveApp,
    StreamFactory,
    answered_call,
    call_state,
    load_corpus,
    media_client,
)
from tests.media.test_resume import ResumeBackend


async def _ended(live: LiveApp, call_id: str) -> Any:
    return await call_state(live, call_id, connection_state="disconnected")


async def test_a_caller_who_hangs_up_ended_the_call_and_nothing_is_parked(
    start_app: AppFactory, emulator: AcsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backend = ResumeBackend()
    async with start_app(media_resume_window_s=5) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await answered_call(live, emulator)
        await emulator.wait_for(lambda: call_id in media_client(emulator).streams)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: backend.frames >= 5)
        await emulator.remote_hang_up(call_id)
        body = await _ended(live, call_id)
        await stream.wait_for(lambda s: backend.closed == 1)
    assert body["ended_by"] == "caller"
    assert backend.events == []  # never told the stream was interrupted
    text = caplog.text
    assert "parked" not in text
    assert "while the stream was away" not in text


async def test_a_hang_up_through_the_api_is_the_api_s(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app() as live:
        call_id = await answered_call(live, emulator)
        response = await live.client.delete(
            f"/api/calls/{call_id}", params={"for_everyone": "true"}
        )
        assert response.status_code == 202, response.text
        body = await _ended(live, call_id)
    assert body["ended_by"] == "api"
    assert [a["requested_by"] for a in body["actions"] if a["kind"] == "hang_up"] == ["api"]


async def test_a_call_still_up_when_the_instance_stops_is_hung_up_not_left_silent(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app() as live:
        call_id = await answered_call(live, emulator)
        await emulator.wait_for(lambda: call_id in media_client(emulator).streams)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 3)
    # The app is gone (and its in-memory record with it): the emulator saw the hang-up.
    await emulator.wait_for(lambda: emulator.calls[call_id].is_disconnected)
    hang_ups = [r for r in emulator.requests if r.path.endswith(f"{call_id}:terminate")]
    assert len(hang_ups) == 1


async def test_acs_ending_the_call_with_a_failure_code_is_acs_s(live: LiveApp) -> None:
    connected = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
    disconnected = load_corpus("callback_events/pysdk_e2e_media_CallDisconnected.json")
    call_id = f"call-{uuid.uuid4()}"
    for event in (connected, disconnected):
        event["id"] = str(uuid.uuid4())
        event["data"]["callConnectionId"] = call_id
    disconnected["data"]["resultInformation"] = {"code": 500, "subCode": 8500, "message": "x"}
    assert (await live.client.post("/api/callbacks", json=[connected])).status_code == 200
    assert (await live.client.post("/api/callbacks", json=[disconnected])).status_code == 200
    body = (await live.client.get(f"/api/calls/{call_id}")).json()
    assert body["ended_by"] == "acs"


async def test_a_stream_dropped_before_media_streaming_started_arrived_still_resumes(
    live: LiveApp, open_stream: StreamFactory
) -> None:
    # Only CallConnected has been folded in: the socket's own audio proves the media is on.
    backend = ResumeBackend()
    live.services.backend_factory = lambda settings: backend
    connected = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
    call_id = f"call-{uuid.uuid4()}"
    connected["id"] = str(uuid.uuid4())
    connected["data"]["callConnectionId"] = call_id
    assert (await live.client.post("/api/callbacks", json=[connected])).status_code == 200
    async with open_stream(live, call_connection_id=call_id, reestablish=True) as stream:
        await stream.wait_for(lambda s: backend.frames >= 5)
        stream.drop()
        await stream.wait_for(lambda s: backend.frames_after_resume >= 5, timeout=5)
        assert backend.events == ["MediaStreamInterrupted", "MediaStreamResumed"]
        assert (backend.opened, backend.closed) == (1, 0)


@pytest.fixture
async def live(start_app: AppFactory) -> LiveApp:  # type: ignore[misc]
    async with start_app(media_resume_window_s=5) as app:
        yield app
