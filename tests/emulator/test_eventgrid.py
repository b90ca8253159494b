"""Event Grid's side: IncomingCall deliveries in both schemas and the validation handshakes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames

from app.emulator import AcsEmulator
from tests.conftest import load_corpus
from tests.emulator.conftest import HttpSink

INCOMING = "/incoming"
CORPUS_INCOMING = "incoming_call/docs_eventgrid_schema_IncomingCall_array.json"
CORPUS_VALIDATION = "subscription_validation/docs_SubscriptionValidationEvent_array_2022.json"


async def test_incoming_call_is_shaped_like_the_documented_event(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url(INCOMING), caller="+14255550123")

    (post,) = sink.posts(INCOMING)
    (documented,) = load_corpus(CORPUS_INCOMING)
    (event,) = post.body
    assert event.keys() == documented.keys()
    assert event["data"].keys() == documented["data"].keys()
    assert event["id"] == offer.event_id
    assert event["data"]["incomingCallContext"] == offer.incoming_call_context
    assert event["data"]["from"]["phoneNumber"] == {"value": "+14255550123"}
    assert post.headers["aeg-event-type"] == "Notification"


async def test_incoming_call_parses_with_the_eventgrid_sdk(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    await emulator.place_incoming_call(sink.url(INCOMING))

    parsed = EventGridEvent.from_dict(sink.posts(INCOMING)[0].body[0])

    assert parsed.event_type == SystemEventNames.AcsIncomingCallEventName


async def test_incoming_call_as_cloud_event(emulator: AcsEmulator, sink: HttpSink) -> None:
    offer = await emulator.place_incoming_call(sink.url(INCOMING), schema="cloudevents")

    (post,) = sink.posts(INCOMING)
    parsed: CloudEvent[dict[str, Any]] = CloudEvent.from_dict(post.body[0])
    assert parsed.type == "Microsoft.Communication.IncomingCall"
    assert parsed.specversion == "1.0"
    assert parsed.data is not None
    assert parsed.data["incomingCallContext"] == offer.incoming_call_context
    assert post.headers["Content-Type"].startswith("application/cloudevents-batch+json")


async def test_repeated_deliveries_carry_the_same_event(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url(INCOMING), deliveries=2)

    posts = sink.posts(INCOMING)
    assert [p.body[0]["id"] for p in posts] == [offer.event_id, offer.event_id]
    assert [p.headers["aeg-delivery-count"] for p in posts] == ["0", "1"]
    assert [d.status for d in offer.deliveries] == [200, 200]


async def test_each_incoming_call_gets_a_fresh_context(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    first = await emulator.place_incoming_call(sink.url(INCOMING))
    second = await emulator.place_incoming_call(sink.url(INCOMING))

    assert first.incoming_call_context != second.incoming_call_context
    assert first.server_call_id != second.server_call_id
    assert first.correlation_id != second.correlation_id


async def test_delivery_records_the_webhook_status_and_body(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    sink.status = 503

    offer = await emulator.place_incoming_call(sink.url(INCOMING), headers={"x-test": "1"})

    assert offer.deliveries[0].status == 503
    assert not offer.deliveries[0].ok
    assert sink.posts(INCOMING)[0].headers["x-test"] == "1"


async def test_unreachable_webhook_is_recorded_as_an_error(emulator: AcsEmulator) -> None:
    offer = await emulator.place_incoming_call("http://127.0.0.1:9/incoming")

    assert offer.deliveries[0].status is None
    assert offer.deliveries[0].error


async def test_call_for_context_finds_the_answered_call(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url(INCOMING))
    assert await emulator.call_for_context(offer.incoming_call_context) is None

    props = await client.answer_call(offer.incoming_call_context, sink.url())

    call = await emulator.call_for_context(offer.incoming_call_context)
    assert call is not None
    assert call.call_connection_id == props.call_connection_id
    assert call.caller == "+14255550123"


async def test_eventgrid_handshake_succeeds_when_the_code_is_echoed(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    async def echo_code(request: web.Request, raw: bytes) -> web.Response:
        (event,) = json.loads(raw)
        return web.json_response({"validationResponse": event["data"]["validationCode"]})

    sink.responder = echo_code

    result = await emulator.validate_webhook(sink.url(INCOMING), schema="eventgrid")

    assert result.ok
    (post,) = sink.posts(INCOMING)
    assert post.headers["aeg-event-type"] == "SubscriptionValidation"
    (documented,) = load_corpus(CORPUS_VALIDATION)
    assert post.body[0].keys() == documented.keys()


async def test_eventgrid_handshake_fails_on_a_wrong_code(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    async def wrong_code(request: web.Request, raw: bytes) -> web.Response:
        return web.json_response({"validationResponse": "nope"})

    sink.responder = wrong_code

    result = await emulator.validate_webhook(sink.url(INCOMING), schema="eventgrid")

    assert result.status == 200
    assert not result.ok


async def test_cloudevents_handshake_is_an_options_request(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    async def allow(request: web.Request, raw: bytes) -> web.Response:
        origin = request.headers["WebHook-Request-Origin"]
        return web.Response(headers={"WebHook-Allowed-Origin": origin})

    sink.responder = allow

    result = await emulator.validate_webhook(sink.url(INCOMING), schema="cloudevents")

    assert result.ok
    assert sink.received[-1].method == "OPTIONS"
