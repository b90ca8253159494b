"""The delivery parsers against Microsoft's payloads, the Azure SDK's reading of them, and junk."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames

from app.calls.deliveries import (
    INCOMING_CALL,
    SUBSCRIPTION_VALIDATION,
    EventParseError,
    load_json_array,
    parse_callback_events,
    parse_grid_events,
    parse_incoming_call,
    validation_code,
)
from tests.conftest import CORPUS

# Every corpus file that is a delivery to /api/incomingCall or a callback to /api/callbacks
# (the others are REST responses, socket frames, and the handshake's expected answer).
GRID_FILES = sorted(
    p
    for folder in ("incoming_call", "subscription_validation")
    for p in (CORPUS / folder).glob("*.json")
    if not p.stem.endswith("_expected")
)
CALLBACK_FILES = sorted((CORPUS / "callback_events").glob("*.json"))


def _items(path: Path) -> list[dict[str, Any]]:
    return load_json_array(path.read_bytes())


def test_the_corpus_has_deliveries_and_callbacks() -> None:
    assert len(GRID_FILES) >= 3
    assert len(CALLBACK_FILES) >= 5


@pytest.mark.parametrize("path", GRID_FILES, ids=lambda p: p.stem)
def test_every_corpus_delivery_parses_as_the_sdk_reads_it(path: Path) -> None:
    items = _items(path)
    events = parse_grid_events(items)
    assert len(events) == len(items)
    for item, event in zip(items, events, strict=True):
        sdk = EventGridEvent.from_dict(item)
        assert (event.id, event.type, event.data) == (sdk.id, sdk.event_type, sdk.data)
        assert event.time == sdk.event_time
        if event.type == INCOMING_CALL:
            incoming = parse_incoming_call(event)
            assert incoming.incoming_call_context == item["data"]["incomingCallContext"]
            assert incoming.caller == item["data"]["from"]["rawId"]
        elif event.type == SUBSCRIPTION_VALIDATION:
            assert validation_code(event) == item["data"]["validationCode"]
        else:
            pytest.fail(f"unexpected event type {event.type}")


@pytest.mark.parametrize("path", GRID_FILES, ids=lambda p: p.stem)
def test_corpus_deliveries_in_the_cloudevents_schema_parse_the_same(path: Path) -> None:
    # Event Grid delivers the same event in the CloudEvents schema when the subscription asks.
    items = _items(path)
    as_cloud = [
        {
            "id": item["id"],
            "source": item["topic"],
            "subject": item["subject"],
            "type": item["eventType"],
            "time": item["eventTime"],
            "data": item["data"],
            "specversion": "1.0",
        }
        for item in items
    ]
    assert parse_grid_events(as_cloud) == parse_grid_events(items)


@pytest.mark.parametrize("path", CALLBACK_FILES, ids=lambda p: p.stem)
def test_every_corpus_callback_parses_as_the_sdk_reads_it(path: Path) -> None:
    items = _items(path)
    events = parse_callback_events(items)
    assert len(events) == len(items) == 1
    item, event = items[0], events[0]
    sdk: CloudEvent[dict[str, Any]] = CloudEvent.from_dict(item)
    assert event.id == sdk.id
    assert event.name == sdk.type.removeprefix("Microsoft.Communication.")
    assert event.time == sdk.time
    assert event.data == sdk.data
    assert event.call_connection_id == item["data"]["callConnectionId"]
    assert event.correlation_id == item["data"]["correlationId"]
    assert event.server_call_id == item["data"]["serverCallId"]
    assert event.result["code"] == 200


def test_event_names_are_the_sdk_constants() -> None:
    assert SystemEventNames.AcsIncomingCallEventName == INCOMING_CALL
    assert INCOMING_CALL == "Microsoft.Communication.IncomingCall"
    assert SystemEventNames.EventGridSubscriptionValidationEventName == SUBSCRIPTION_VALIDATION
    assert type(INCOMING_CALL) is str  # a plain string, as before: safe in logs and JSON


def _callback(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(
        (CORPUS / "callback_events/pysdk_e2e_media_CallConnected.json").read_text()
    )
    item.update(changes)
    return item


def test_legacy_callback_with_type_in_data_only() -> None:
    item = _callback()
    del item["type"]
    item["data"]["type"] = "Microsoft.Communication.CallConnected"
    assert parse_callback_events([item])[0].name == "CallConnected"


def test_callbacks_the_sdk_would_refuse_are_still_read() -> None:
    no_source = _callback()
    del no_source["source"]
    no_id = _callback()
    del no_id["id"]
    odd_keys = _callback(eventSource="x", Extra=1, **{"x-y": 2})
    naive_time = _callback(time="2025-05-06T16:31:49.4325356")
    bad_time = _callback(time=12)
    refusals = [
        (no_source, "`source` and `type` params are required"),
        (odd_keys, "Extension attributes should be lower cased"),
        (naive_time, "offset must be a timedelta"),  # it reads "49.4325356" as an offset
    ]
    for refused, sdk_reason in refusals:  # what CloudEvent.from_dict makes of them
        with pytest.raises(ValueError, match=sdk_reason):
            CloudEvent.from_dict(refused)
    events = parse_callback_events([no_source, no_id, odd_keys, naive_time, bad_time])
    assert [e.name for e in events] == ["CallConnected"] * 5
    assert events[1].id == ""  # not a random UUID, as the SDK would invent
    assert events[3].time == datetime(2025, 5, 6, 16, 31, 49, 432535, tzinfo=UTC)
    assert events[4].time is None


def test_callback_time_keeps_seven_digit_fractions_and_offsets() -> None:
    event = parse_callback_events([_callback(time="2025-05-06T18:31:49.4325356+02:00")])[0]
    assert event.time == datetime(2025, 5, 6, 16, 31, 49, 432535, tzinfo=UTC)


def test_unknown_types_parse_in_both_schemas() -> None:
    events = parse_grid_events(
        [
            {"id": "1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}},
            {"id": "2", "type": "Microsoft.Storage.BlobCreated", "source": "/x", "data": None},
            {"id": "3", "eventType": "X", "eventTime": "not a time"},
        ]
    )
    assert [(e.id, e.type, e.data, e.time) for e in events] == [
        ("1", "Microsoft.Storage.BlobCreated", {}, None),
        ("2", "Microsoft.Storage.BlobCreated", {}, None),
        ("3", "X", {}, None),
    ]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"eventType": INCOMING_CALL, "data": {}}, "no id"),
        ({"id": 1, "eventType": 2}, "no id"),  # EventGridEvent.from_dict would make it "1", "2"
        ({"id": "1", "eventType": 2}, "no eventType"),
        ({"id": "1", "eventType": INCOMING_CALL, "data": []}, "data must be an object"),
        ({"id": "1", "type": {"a": 1}, "source": "/x"}, "no type"),
        ({"id": "1", "source": "/x"}, "no type"),
    ],
)
def test_malformed_deliveries_say_why(item: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventParseError, match=reason):
        parse_grid_events([item])


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"data": {}}, "callConnectionId"),
        ({"id": "x", "type": "T", "data": "nope"}, "no data object"),
        ({"id": "x", "data": {"callConnectionId": "c"}}, "no type"),
        ({"id": "x", "type": 5, "data": {"callConnectionId": "c"}}, "no type"),
        ({"id": "x", "type": "T", "data": {"callConnectionId": 5}}, "callConnectionId"),
        ({"type": "T", "data_base64": "AA=="}, "no data object"),
    ],
)
def test_malformed_callbacks_say_why(item: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventParseError, match=reason):
        parse_callback_events([item])


def _nested_delivery(depth: int) -> bytes:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    return b'[{"id":"1","eventType":"X","data":' + nested + b"}]"


def test_deeply_nested_data_is_a_parse_error_or_parsed_never_a_crash() -> None:
    assert parse_grid_events(load_json_array(_nested_delivery(100)))[0].type == "X"
    with contextlib.suppress(EventParseError):  # near the recursion limit: either is fine
        assert parse_grid_events(load_json_array(_nested_delivery(900)))[0].type == "X"
    with pytest.raises(EventParseError, match="nested"):
        parse_grid_events(load_json_array(_nested_delivery(5000)))


def test_a_base64_payload_does_not_reject_a_delivery() -> None:
    # As before the SDK was used: data_base64 is not read; unknown events are ignored downstream.
    item = {"id": "1", "type": "T", "source": "/x", "data_base64": "AA=="}
    assert parse_grid_events([item])[0].data == {}
