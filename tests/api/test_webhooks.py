"""Event Grid handshakes, Microsoft's payloads, and malformed deliveries."""

from __future__ import annotations

import json

import pytest

from app.emulator import AcsEmulator
from tests.conftest import CORPUS, LiveApp, load_corpus

CALLBACK_FILES = sorted((CORPUS / "callback_events").glob("*.json"))
CALLBACKS = {p.stem: json.loads(p.read_text()) for p in CALLBACK_FILES}


@pytest.mark.parametrize("name", ["2018", "2022"])
async def test_eventgrid_validation_handshake_echoes_the_code(live_app: LiveApp, name: str) -> None:
    payload = load_corpus(
        f"subscription_validation/docs_SubscriptionValidationEvent_array_{name}.json"
    )
    response = await live_app.client.post(
        "/api/incomingCall", json=payload, headers={"aeg-event-type": "SubscriptionValidation"}
    )
    assert response.status_code == 200
    assert response.json() == load_corpus(
        "subscription_validation/docs_SubscriptionValidationResponse_expected.json"
    )


async def test_cloudevents_handshake_allows_the_origin(live_app: LiveApp) -> None:
    response = await live_app.client.options(
        "/api/incomingCall", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_emulated_handshakes_succeed(
    live_app: LiveApp, emulator: AcsEmulator, schema: str
) -> None:
    result = await emulator.validate_webhook(live_app.webhook_url, schema=schema)  # type: ignore[arg-type]
    assert result.ok, result


async def test_microsoft_incoming_call_example_is_parsed_and_sent_to_acs(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    payload = load_corpus("incoming_call/docs_eventgrid_schema_IncomingCall_array.json")
    # The documented context is not one the emulator offered: ACS refuses it, and so we say 502
    # (not 400: the delivery itself was valid, and Event Grid should retry).
    response = await live_app.client.post("/api/incomingCall", json=payload)
    assert response.status_code == 502
    assert payload[0]["data"]["incomingCallContext"] not in response.text
    answers = [r for r in emulator.requests if r.path.endswith(":answer")]
    assert answers
    assert answers[0].body["incomingCallContext"] == payload[0]["data"]["incomingCallContext"]


@pytest.mark.parametrize("name", sorted(CALLBACKS))
async def test_microsoft_callback_examples_are_accepted(live_app: LiveApp, name: str) -> None:
    event = CALLBACKS[name]
    response = await live_app.client.post("/api/callbacks", json=[event])
    assert response.status_code == 200
    record = (await live_app.client.get(f"/api/calls/{event['data']['callConnectionId']}")).json()
    assert record["recent_events"][-1]["type"] == event["type"].removeprefix(
        "Microsoft.Communication."
    )


async def test_corpus_callbacks_in_order_build_the_call_state(live_app: LiveApp) -> None:
    events = list(CALLBACKS.values())
    events.sort(key=lambda e: e["time"])
    assert (await live_app.client.post("/api/callbacks", json=events)).status_code == 200
    call_id = events[0]["data"]["callConnectionId"]
    record = (await live_app.client.get(f"/api/calls/{call_id}")).json()
    assert record["connection_state"] == "disconnected"
    assert record["media_state"] == "stopped"
    assert record["correlation_id"] == "b2cc74bf-be72-4a6f-88da-f2107fc6780f"


async def test_late_media_started_does_not_undo_a_stop(live_app: LiveApp) -> None:
    started = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStarted.json")
    stopped = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStopped.json")
    await live_app.client.post("/api/callbacks", json=[stopped])
    await live_app.client.post("/api/callbacks", json=[started])
    record = (await live_app.client.get(f"/api/calls/{started['data']['callConnectionId']}")).json()
    assert record["media_state"] == "stopped"


async def test_media_failed_with_unspecified_error_keeps_details(live_app: LiveApp) -> None:
    failed = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStopped.json")
    failed["type"] = "Microsoft.Communication.MediaStreamingFailed"
    failed["data"]["mediaStreamingUpdate"] = {
        "contentType": "audio",
        "mediaStreamingStatus": "unspecifiedError",
        "mediaStreamingStatusDetails": "streamConnectionInterrupted",
    }
    failed["data"]["resultInformation"] = {"code": 500, "subCode": 8603, "message": "lost"}
    await live_app.client.post("/api/callbacks", json=[failed])
    record = (await live_app.client.get(f"/api/calls/{failed['data']['callConnectionId']}")).json()
    assert record["media_state"] == "failed"
    assert record["media_failure"]["status_details"] == "streamConnectionInterrupted"


async def test_unknown_event_types_are_accepted_and_ignored(live_app: LiveApp) -> None:
    event = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
    event["type"] = "Microsoft.Communication.SomethingNew"
    assert (await live_app.client.post("/api/callbacks", json=[event])).status_code == 200
    unknown_grid = [{"id": "1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}}]
    response = await live_app.client.post("/api/incomingCall", json=unknown_grid)
    assert response.status_code == 200
    assert response.json()["ignored"] == 1


async def test_callbacks_the_cloudevent_type_refuses_are_accepted(live_app: LiveApp) -> None:
    # Old callbacks carry the type in data.type; no source, an odd key and a time without an
    # offset make azure.core's CloudEvent.from_dict raise. None of it is worth losing the event.
    event = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
    event["data"]["type"] = event.pop("type")
    del event["source"]
    event["eventSource"] = "calling"
    event["time"] = "2025-05-06T16:31:49.4325356"
    assert (await live_app.client.post("/api/callbacks", json=[event])).status_code == 200
    record = (await live_app.client.get(f"/api/calls/{event['data']['callConnectionId']}")).json()
    assert record["connection_state"] == "connected"


BAD_BODIES = [
    b"not json",
    b"",
    b"42",
    b'"a string"',
    b"[1, 2]",
    b'[{"data": {}}]',
    b'[{"id": "x", "type": "Microsoft.Communication.CallConnected", "data": "nope"}]',
    b'[{"id": "x", "type": "Microsoft.Communication.CallConnected",'
    b' "data": {"callConnectionId": 5}}]',
    b'[{"id": "x", "type": "Microsoft.Communication.CallConnected", "source": "s",'
    b' "data_base64": "AA=="}]',
    b"\xff\xfe",
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_malformed_callbacks_are_400_with_a_reason(live_app: LiveApp, body: bytes) -> None:
    response = await live_app.client.post(
        "/api/callbacks", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"]


GRID_BAD_BODIES = [
    b"{{",
    b"null",
    b"[null]",
    b'[{"eventType": "Microsoft.Communication.IncomingCall", "data": {}}]',
    b'[{"id": "1", "eventType": "Microsoft.Communication.IncomingCall", "data": {}}]',
    b'[{"id": "1", "eventType": "Microsoft.Communication.IncomingCall", "data": []}]',
    b'[{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {}}]',
    b'[{"id": 1, "eventType": 2}]',
]


@pytest.mark.parametrize("body", GRID_BAD_BODIES)
async def test_malformed_event_grid_deliveries_are_400(live_app: LiveApp, body: bytes) -> None:
    response = await live_app.client.post(
        "/api/incomingCall", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event"


async def test_openapi_documents_the_control_api(live_app: LiveApp) -> None:
    schema = (await live_app.client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in [
        "/api/calls",
        "/api/calls/{call_connection_id}",
        "/api/calls/{call_connection_id}/media/start",
        "/api/calls/{call_connection_id}/media/stop",
        "/api/incomingCall",
        "/api/callbacks",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    assert "409" in paths["/api/calls/{call_connection_id}/media/start"]["post"]["responses"]
