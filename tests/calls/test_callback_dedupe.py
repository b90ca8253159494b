"""A callback ACS delivers twice (same CloudEvent id) is acknowledged and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from app.calls.call_bus import BusCommand
from app.services import Services
from tests.conftest import AppFactory, LiveApp, load_corpus

CONNECTED = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
CALL_ID = CONNECTED["data"]["callConnectionId"]


def dtmf_completed(call_id: str, event_id: str | None) -> dict[str, Any]:
    """A `SendDtmfTonesCompleted`: an action outcome, which the call's backend is told."""
    event: dict[str, Any] = {
        "type": "Microsoft.Communication.SendDtmfTonesCompleted",
        "source": f"calling/callConnections/{call_id}",
        "specversion": "1.0",
        "time": "2026-03-12T10:00:00Z",
        "data": {
            "callConnectionId": call_id,
            "operationContext": "dtmf-1",
            "resultInformation": {"code": 200, "subCode": 0, "message": "Tones sent."},
        },
    }
    if event_id is not None:
        event["id"] = event_id
    return event


class Backend:
    """Serves a call on an app's real call bus, as a media session does; counts call events."""

    def __init__(self) -> None:
        self.call_events: list[Mapping[str, Any]] = []

    async def handle(self, command: BusCommand) -> dict[str, Any]:
        if command.name == "call_event":
            self.call_events.append(command.args)
        return {}

    def serve(self, live: LiveApp, call_id: str) -> AbstractAsyncContextManager[None]:
        services: Services = live.app.state.services
        return services.bus.serve(call_id, self.handle)


async def event_types(live: LiveApp, call_id: str) -> list[str]:
    record = (await live.client.get(f"/api/calls/{call_id}")).json()
    return [event["type"] for event in record["recent_events"]]


async def test_the_same_callback_twice_is_recorded_once(live_app: LiveApp) -> None:
    first = await live_app.client.post("/api/callbacks", json=[CONNECTED])
    again = await live_app.client.post("/api/callbacks", json=[CONNECTED])
    assert first.status_code == again.status_code == 200
    assert first.json() == {"applied": 1, "duplicates": 0}
    assert again.json() == {"applied": 0, "duplicates": 1}
    assert await event_types(live_app, CALL_ID) == ["CallConnected"]


async def test_a_repeated_action_outcome_reaches_the_backend_once(live_app: LiveApp) -> None:
    call_id = str(uuid.uuid4())
    event = dtmf_completed(call_id, event_id=str(uuid.uuid4()))
    backend = Backend()
    async with backend.serve(live_app, call_id):
        for _ in range(3):
            response = await live_app.client.post("/api/callbacks", json=[event])
            assert response.status_code == 200
    assert [e["name"] for e in backend.call_events] == ["SendDtmfTonesCompleted"]
    assert await event_types(live_app, call_id) == ["SendDtmfTonesCompleted"]


async def test_a_batch_retried_after_a_new_event_applies_only_the_new_one(
    live_app: LiveApp,
) -> None:
    started = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStarted.json")
    await live_app.client.post("/api/callbacks", json=[CONNECTED])
    response = await live_app.client.post("/api/callbacks", json=[CONNECTED, started])
    assert response.json() == {"applied": 1, "duplicates": 1}
    assert await event_types(live_app, CALL_ID) == ["CallConnected", "MediaStreamingStarted"]


async def test_events_with_the_same_id_on_two_calls_are_both_applied(live_app: LiveApp) -> None:
    event_id = str(uuid.uuid4())
    calls = [str(uuid.uuid4()), str(uuid.uuid4())]
    for call_id in calls:
        response = await live_app.client.post(
            "/api/callbacks", json=[dtmf_completed(call_id, event_id)]
        )
        assert response.json() == {"applied": 1, "duplicates": 0}
    for call_id in calls:
        assert await event_types(live_app, call_id) == ["SendDtmfTonesCompleted"]


async def test_an_event_without_an_id_is_applied_each_time(live_app: LiveApp) -> None:
    call_id = str(uuid.uuid4())
    for _ in range(2):
        response = await live_app.client.post(
            "/api/callbacks", json=[dtmf_completed(call_id, event_id=None)]
        )
        assert response.json() == {"applied": 1, "duplicates": 0}
    assert await event_types(live_app, call_id) == ["SendDtmfTonesCompleted"] * 2


async def test_a_callback_delivered_to_two_instances_is_applied_once(
    start_app: AppFactory, redis_url: str, redis_prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_key_prefix": redis_prefix}
    call_id = str(uuid.uuid4())
    event = dtmf_completed(call_id, event_id=str(uuid.uuid4()))
    backend = Backend()
    async with (
        start_app(instance_id="a", **shared) as a,
        start_app(instance_id="b", **shared) as b,
        backend.serve(b, call_id),
    ):
        # ACS retries at whichever instance the load balancer picks, even at once.
        responses = await asyncio.gather(
            a.client.post("/api/callbacks", json=[event]),
            b.client.post("/api/callbacks", json=[event]),
            a.client.post("/api/callbacks", json=[event]),
        )
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert sorted(r.json()["applied"] for r in responses) == [0, 0, 1]
        assert [e["name"] for e in backend.call_events] == ["SendDtmfTonesCompleted"]
        assert await event_types(a, call_id) == ["SendDtmfTonesCompleted"]
