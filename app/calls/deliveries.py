"""Parsing what ACS and Event Grid post to us (pure, no I/O).

    EventParseError          the body is not what the sender's schema promises (HTTP 400)

Event Grid deliveries come in the Event Grid schema or the CloudEvents schema, both as arrays;
Call Automation callbacks are arrays of CloudEvents 1.0. Unknown event types parse fine: the
caller decides to ignore them.

Where the Azure SDK's types fit, they are used: event type names come from
`azure.eventgrid.SystemEventNames`, and CloudEvents envelopes (callbacks, and CloudEvents-schema
deliveries) are read by `azure.core.messaging.CloudEvent.from_dict`. Event Grid-schema envelopes
are read here rather than by `azure.eventgrid.EventGridEvent.from_dict`, which does not fit:

- it validates nothing (a missing `id` or `eventType` comes back as None) and silently coerces
  what it finds to the declared types (`"id": 1` becomes "1", `"eventType": {...}` a string), so
  a malformed delivery would be answered 200 instead of 400 with a reason;
- it walks and copies `data` recursively through the msrest deserializer (about 60 us for an
  IncomingCall, against a few us here), which can raise RecursionError for nesting `json.loads`
  accepted, and which maps values it cannot convert to None;
- it raises an opaque DeserializationError on an `eventTime` it cannot parse, a field we never
  act on: an IncomingCall must not be refused (and lost: Event Grid does not retry a 400) for it.

The Event Grid schema fields we use are four (`id`, `eventType`, `eventTime`, `data`); reading
them by hand is shorter than undoing those behaviours.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.messaging import CloudEvent
from azure.eventgrid import SystemEventNames

INCOMING_CALL: str = SystemEventNames.AcsIncomingCallEventName.value
SUBSCRIPTION_VALIDATION: str = SystemEventNames.EventGridSubscriptionValidationEventName.value
# Call Automation callback types ("Microsoft.Communication.CallConnected", ...) are not Event Grid
# system events, so SystemEventNames does not list them, and azure-communication-callautomation
# 1.6.0 exports no event names (only private generated models): the bridge names them itself
# (`record_changes.KNOWN_EVENTS`), without this namespace.
CALLBACK_PREFIX = "Microsoft.Communication."

# The CloudEvents 1.0 context attributes `CloudEvent.from_dict` maps to its own fields; any other
# key becomes an extension attribute, which it refuses unless lower-case alphanumeric.
_CLOUD_EVENT_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "data", "datacontenttype", "dataschema", "subject"}
)


class EventParseError(ValueError):
    """A delivery that cannot be understood; the message is safe to return to the sender."""


@dataclass(frozen=True, slots=True)
class GridEvent:
    """One Event Grid event, whichever schema carried it."""

    id: str
    type: str
    data: dict[str, Any]
    time: datetime | None


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """The fields of `Microsoft.Communication.IncomingCall` the bridge uses."""

    event_id: str
    incoming_call_context: str
    caller: str | None
    callee: str | None
    caller_display_name: str | None
    server_call_id: str | None
    correlation_id: str | None
    custom_context: dict[str, Any] = field(default_factory=dict)

    @property
    def context_digest(self) -> str:
        """A short stable digest of the (long, secret) incoming call context, for claims."""
        return hashlib.sha256(self.incoming_call_context.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """One Call Automation callback event."""

    id: str
    name: str  # "CallConnected", "MediaStreamingStarted", ... (without the namespace)
    call_connection_id: str
    time: datetime | None
    data: dict[str, Any]

    @property
    def correlation_id(self) -> str | None:
        return _opt_str(self.data.get("correlationId"))

    @property
    def server_call_id(self) -> str | None:
        return _opt_str(self.data.get("serverCallId"))

    @property
    def operation_context(self) -> str | None:
        return _opt_str(self.data.get("operationContext"))

    @property
    def result(self) -> dict[str, Any]:
        info = self.data.get("resultInformation")
        return info if isinstance(info, dict) else {}


def load_json_array(body: bytes) -> list[dict[str, Any]]:
    """Decode a JSON array of objects, or raise EventParseError saying what is wrong."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventParseError("body is not valid JSON") from exc
    except RecursionError as exc:
        # A few KB of `[[[[` exhaust the decoder's recursion limit: hostile, not a server fault.
        raise EventParseError("body is nested too deeply") from exc
    if isinstance(decoded, dict):
        # A single event outside an array is a common client mistake; accept it as a batch of 1.
        decoded = [decoded]
    if not isinstance(decoded, list):
        raise EventParseError("body must be a JSON array of events")
    for index, item in enumerate(decoded):
        if not isinstance(item, dict):
            raise EventParseError(f"event {index} is not a JSON object")
    return decoded


def parse_grid_events(items: list[dict[str, Any]]) -> list[GridEvent]:
    """Event Grid events from either schema (`eventType`, else CloudEvents `type`)."""
    events = []
    for index, item in enumerate(items):
        event_id = item.get("id")
        if not isinstance(event_id, str) or not event_id:
            # Also for CloudEvents, where the SDK would invent a UUID: the id is a dedupe key.
            raise EventParseError(f"event {index} has no id string")
        data = item.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise EventParseError(f"event {index} data must be an object")
        if "eventType" in item:  # the Event Grid schema (see the module docstring)
            event_type = item["eventType"]
            if not isinstance(event_type, str) or not event_type:
                raise EventParseError(f"event {index} has no eventType string")
            time = _parse_time(item.get("eventTime"))
        else:
            cloud = _cloud_event(index, item, event_type=item.get("type"), data=data)
            event_type, time = cloud.type, cloud.time
        events.append(GridEvent(event_id, event_type, data, time))
    return events


def validation_code(event: GridEvent) -> str:
    """The code of a SubscriptionValidationEvent."""
    code = event.data.get("validationCode")
    if not isinstance(code, str) or not code:
        raise EventParseError("SubscriptionValidationEvent without a validationCode string")
    return code


def parse_incoming_call(event: GridEvent) -> IncomingCall:
    """The IncomingCall fields; the context is required, the rest is best effort."""
    data = event.data
    context = data.get("incomingCallContext")
    if not isinstance(context, str) or not context:
        raise EventParseError("IncomingCall without an incomingCallContext string")
    custom = data.get("customContext")
    return IncomingCall(
        event_id=event.id,
        incoming_call_context=context,
        caller=identifier_raw_id(data.get("from")),
        callee=identifier_raw_id(data.get("to")),
        caller_display_name=_opt_str(data.get("callerDisplayName")),
        server_call_id=_opt_str(data.get("serverCallId")),
        correlation_id=_opt_str(data.get("correlationId")),
        custom_context=custom if isinstance(custom, dict) else {},
    )


def parse_callback_events(items: list[dict[str, Any]]) -> list[CallbackEvent]:
    """Callback CloudEvents; old payloads carry the type in `data.type`."""
    events = []
    for index, item in enumerate(items):
        data = item.get("data")
        if not isinstance(data, dict):
            raise EventParseError(f"event {index} has no data object")
        call_id = data.get("callConnectionId")
        if not isinstance(call_id, str) or not call_id:
            raise EventParseError(f"event {index} has no data.callConnectionId string")
        cloud = _cloud_event(index, item, event_type=item.get("type", data.get("type")), data=data)
        event_id = item.get("id")
        events.append(
            CallbackEvent(
                # Not `cloud.id`: for an event without one the SDK invents a random UUID.
                id=event_id if isinstance(event_id, str) else "",
                name=cloud.type.removeprefix(CALLBACK_PREFIX),
                call_connection_id=call_id,
                time=cloud.time,
                data=data,
            )
        )
    return events


def _cloud_event(
    index: int, item: dict[str, Any], *, event_type: object, data: dict[str, Any]
) -> CloudEvent[dict[str, Any]]:
    """The SDK's CloudEvent for one item, keeping the tolerance older or looser senders need.

    `CloudEvent.from_dict` is stricter than what ACS has posted over the years, so the envelope
    handed to it is normalized first, each for a reason:

    - `type`: the caller passes it, since old callbacks carry it in `data.type` only;
    - `source`: required by the spec and by the SDK, but the bridge does not use it, and
      refusing a callback for lacking it would lose a state change: "" when absent;
    - `time`: azure-core's parser raises ValueError, TypeError or IndexError on a time without a
      UTC offset or a non-string, so it is parsed here (None when unreadable) and set afterwards;
    - extension keys that are not lower-case alphanumeric (which the SDK refuses) are dropped:
      the bridge reads none, and a stray key must not cost the event. `data_base64` is among
      them: the caller has already decided what `data` (a JSON object) is, as before.
    """
    if not isinstance(event_type, str) or not event_type:
        raise EventParseError(f"event {index} has no type string")
    envelope = {
        key: value
        for key, value in item.items()
        if key in _CLOUD_EVENT_ATTRIBUTES or (key.islower() and key.isalnum() and key != "time")
    }
    envelope.update(type=event_type, data=data)
    if not isinstance(envelope.get("source"), str):
        envelope["source"] = ""
    try:
        cloud: CloudEvent[dict[str, Any]] = CloudEvent.from_dict(envelope)
    except (ValueError, TypeError) as exc:  # none expected after normalization; never a 500
        raise EventParseError(f"event {index} is not a CloudEvent: {exc}") from exc
    cloud.time = _parse_time(item.get("time"))
    return cloud


def identifier_raw_id(model: object) -> str | None:
    """The raw id of an ACS identifier model (`rawId`, or built from its kind)."""
    if not isinstance(model, dict):
        return None
    raw = model.get("rawId")
    if isinstance(raw, str) and raw:
        return raw
    phone = model.get("phoneNumber")
    if isinstance(phone, dict) and isinstance(phone.get("value"), str):
        return f"4:{phone['value']}"
    for kind in ("communicationUser", "microsoftTeamsUser", "microsoftTeamsApp"):
        inner = model.get(kind)
        if isinstance(inner, dict):
            for key in ("id", "userId", "appId"):
                if isinstance(inner.get(key), str):
                    return str(inner[key])
    return None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # ACS writes 7 fractional digits; fromisoformat takes at most 6.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]  # the leading run only
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
