"""Pure builders of the payloads ACS sends: mid-call callbacks (CloudEvents), the Event Grid
IncomingCall and SubscriptionValidation events, and the REST CallConnectionProperties.

Shapes follow `tests/corpus/callback_events/*.json` and
`tests/corpus/incoming_call/docs_eventgrid_schema_IncomingCall_array.json`.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from app.emulator.records import EmulatedCall, OfferedCall

EVENT_VERSION = "2025-05-15"
EVENT_PREFIX = "Microsoft.Communication."
INCOMING_CALL = "Microsoft.Communication.IncomingCall"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
MEDIA_FAILED_SUB_CODE = 8603

_OK = {"code": 200, "subCode": 0, "message": ""}
_ACTION_OK = {"code": 200, "subCode": 0, "message": "Action completed successfully."}
_ENDED = {"code": 200, "subCode": 7000, "message": "The conversation has ended. DiagCode: 0#7000.@"}
# tests/corpus/callback_events/other_calls/javasdk_unit_CallTransferAccepted.json (2023-07).
TRANSFER_ACCEPTED = {
    "code": 200,
    "subCode": 7015,
    "message": "The transfer operation completed successfully.",
}
# tests/corpus/callback_events/other_calls/javasdk_unit_SendDtmfTonesCompleted.json.
DTMF_COMPLETED = {"code": 200, "subCode": 0, "message": "Send DTMF completed successfully."}
_TEAMS_PREFIXES = {"public": "8:orgid:", "dod": "8:dod:", "gcch": "8:gcch:"}


def identifier(raw_id: str) -> dict[str, Any]:
    """An identifier model for a raw id: `+1...` is a phone number, `8:acs:...` a user."""
    if raw_id.startswith("+"):
        return {"kind": "phoneNumber", "rawId": f"4:{raw_id}", "phoneNumber": {"value": raw_id}}
    if raw_id.startswith("4:+"):
        return identifier(raw_id[2:])
    if raw_id.startswith("8:"):
        return {"kind": "communicationUser", "rawId": raw_id, "communicationUser": {"id": raw_id}}
    return {"kind": "unknown", "rawId": raw_id}


def with_raw_id(model: dict[str, Any]) -> dict[str, Any]:
    """An identifier model as ACS echoes it in events: `kind` and `rawId` both present."""
    out = dict(model)
    if isinstance(out.get("rawId"), str) and out["rawId"]:
        return out
    kind = out.get("kind")
    details = out.get(str(kind))
    if not isinstance(details, dict):
        return out
    if kind == "phoneNumber":
        out["rawId"] = f"4:{details.get('value')}"
    elif kind == "communicationUser":
        out["rawId"] = details.get("id")
    elif kind == "microsoftTeamsUser":
        prefix = "8:teamsvisitor:" if details.get("isAnonymous") else None
        prefix = prefix or _TEAMS_PREFIXES.get(str(details.get("cloud", "public")), "8:orgid:")
        out["rawId"] = f"{prefix}{details.get('userId')}"
    elif kind == "microsoftTeamsApp":
        out["rawId"] = f"28:orgid:{details.get('appId')}"
    return out


def callback_event(
    call: EmulatedCall,
    name: str,
    *,
    result_information: dict[str, Any] | None = None,
    operation_context: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One CloudEvents 1.0 callback event `Microsoft.Communication.<name>` for `call`."""
    event_type = EVENT_PREFIX + name
    data: dict[str, Any] = dict(extra or {})
    data.update(
        version=EVENT_VERSION,
        resultInformation=dict(result_information or _OK),
        callConnectionId=call.call_connection_id,
        serverCallId=call.server_call_id,
        correlationId=call.correlation_id,
        publicEventType=event_type,
    )
    if operation_context is not None:
        data["operationContext"] = operation_context
    source = f"calling/callConnections/{call.call_connection_id}"
    return {
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "data": data,
        "time": _now(),
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": source,
    }


def participants_updated(
    call: EmulatedCall, participants: list[dict[str, Any]], sequence_number: int
) -> dict[str, Any]:
    """ParticipantsUpdated listing `participants` (identifier models), unmuted, not on hold."""
    listed = [{"identifier": p, "isMuted": False, "isOnHold": False} for p in participants]
    extra = {"participants": listed, "sequenceNumber": sequence_number}
    return callback_event(call, "ParticipantsUpdated", extra=extra)


def call_connected(call: EmulatedCall) -> dict[str, Any]:
    return callback_event(call, "CallConnected", operation_context=call.operation_context)


def call_disconnected(call: EmulatedCall) -> dict[str, Any]:
    return callback_event(
        call,
        "CallDisconnected",
        result_information=_ENDED,
        operation_context=call.operation_context,
    )


def media_streaming_started(call: EmulatedCall, operation_context: str | None) -> dict[str, Any]:
    return _media_event(call, "Started", "subscriptionStarted", _ACTION_OK, operation_context)


def media_streaming_stopped(call: EmulatedCall, operation_context: str | None) -> dict[str, Any]:
    return _media_event(call, "Stopped", "subscriptionStopped", _ACTION_OK, operation_context)


def media_streaming_failed(
    call: EmulatedCall, details: str, message: str, operation_context: str | None
) -> dict[str, Any]:
    """MediaStreamingFailed with resultInformation 500/8603, as ACS reports a socket failure."""
    result = {"code": 500, "subCode": MEDIA_FAILED_SUB_CODE, "message": message}
    return _media_event(call, "Failed", details, result, operation_context)


def call_transfer_accepted(
    call: EmulatedCall,
    operation_context: str | None,
    transfer_target: dict[str, Any],
    transferee: dict[str, Any] | None,
) -> dict[str, Any]:
    """CallTransferAccepted: the target took the call; this call connection ends next."""
    extra: dict[str, Any] = {"transferTarget": with_raw_id(transfer_target)}
    if transferee is not None:
        extra["transferee"] = with_raw_id(transferee)
    return callback_event(
        call,
        "CallTransferAccepted",
        result_information=TRANSFER_ACCEPTED,
        operation_context=operation_context,
        extra=extra,
    )


def call_transfer_failed(
    call: EmulatedCall, operation_context: str | None, result: dict[str, Any]
) -> dict[str, Any]:
    """CallTransferFailed with `result` as resultInformation; the call stays connected."""
    return callback_event(
        call, "CallTransferFailed", result_information=result, operation_context=operation_context
    )


def send_dtmf_tones_completed(call: EmulatedCall, operation_context: str | None) -> dict[str, Any]:
    return callback_event(
        call,
        "SendDtmfTonesCompleted",
        result_information=DTMF_COMPLETED,
        operation_context=operation_context,
    )


def send_dtmf_tones_failed(
    call: EmulatedCall, operation_context: str | None, result: dict[str, Any]
) -> dict[str, Any]:
    return callback_event(
        call, "SendDtmfTonesFailed", result_information=result, operation_context=operation_context
    )


def operation_response(operation_context: str | None) -> dict[str, Any]:
    """TransferCallResponse / SendDtmfTonesResult: the request's operationContext, echoed."""
    return {} if operation_context is None else {"operationContext": operation_context}


def incoming_call_data(offer: OfferedCall) -> dict[str, Any]:
    """The `data` of a Microsoft.Communication.IncomingCall event."""
    return {
        "to": identifier(offer.callee),
        "from": identifier(offer.caller),
        "serverCallId": offer.server_call_id,
        "callerDisplayName": offer.caller_display_name,
        "incomingCallContext": offer.incoming_call_context,
        "correlationId": offer.correlation_id,
    }


def incoming_call_event(offer: OfferedCall, *, topic: str, cloudevents: bool) -> dict[str, Any]:
    """The IncomingCall event in the Event Grid schema, or as a CloudEvent."""
    data = incoming_call_data(offer)
    subject = f"/caller/{data['from']['rawId']}/recipient/{data['to']['rawId']}"
    return _envelope(INCOMING_CALL, subject, data, topic=topic, cloudevents=cloudevents)


def subscription_validation_event(code: str, validation_url: str, *, topic: str) -> dict[str, Any]:
    """The Event Grid-schema handshake event the webhook must answer with `code`."""
    data = {"validationCode": code, "validationUrl": validation_url}
    event = _envelope(SUBSCRIPTION_VALIDATION, "", data, topic=topic, cloudevents=False)
    event["dataVersion"] = "1"
    return event


def call_properties(call: EmulatedCall) -> dict[str, Any]:
    """CallConnectionProperties, the body of answer/create/get."""
    body: dict[str, Any] = {
        "callConnectionId": call.call_connection_id,
        "serverCallId": call.server_call_id,
        "targets": call.targets,
        "callConnectionState": call.state,
        "callbackUri": call.callback_uri,
        "correlationId": call.correlation_id,
        "mediaStreamingSubscription": {
            "id": call.media_subscription_id,
            "state": call.media_state,
            "subscribedContentTypes": ["audio"] if call.media_options is not None else [],
        },
    }
    if call.source is not None:
        body["source"] = call.source
        if call.source.get("kind") == "phoneNumber":
            body["sourceCallerIdNumber"] = call.source["phoneNumber"]
    if call.caller_display_name is not None:
        body["sourceDisplayName"] = call.caller_display_name
    return body


def new_incoming_call_context() -> str:
    """A fresh opaque context, shaped like the unsigned JWT ACS uses."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = {"cc": base64.b64encode(secrets.token_bytes(180)).decode(), "shrToken": _fresh_token()}
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def new_server_call_id() -> str:
    """A fresh server call id: base64 of a conversation URL, as ACS makes them."""
    url = f"https://api.flightproxy.skype.com/api/v2/cp/conv-emulator/conv/{secrets.token_urlsafe(16)}"
    return base64.b64encode(url.encode()).decode()


def _media_event(
    call: EmulatedCall,
    outcome: str,
    details: str,
    result: dict[str, Any],
    operation_context: str | None,
) -> dict[str, Any]:
    update = {
        "contentType": "Audio",
        "mediaStreamingStatus": f"mediaStreaming{outcome}",
        "mediaStreamingStatusDetails": details,
    }
    return callback_event(
        call,
        f"MediaStreaming{outcome}",
        result_information=result,
        operation_context=operation_context,
        extra={"mediaStreamingUpdate": update},
    )


def _envelope(
    event_type: str, subject: str, data: dict[str, Any], *, topic: str, cloudevents: bool
) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    if cloudevents:
        return {
            "id": event_id,
            "source": topic,
            "specversion": "1.0",
            "type": event_type,
            "subject": subject,
            "time": _now(zulu=True),
            "data": data,
        }
    return {
        "id": event_id,
        "topic": topic,
        "subject": subject,
        "data": data,
        "eventType": event_type,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": _now(zulu=True),
    }


def _now(*, zulu: bool = False) -> str:
    stamp = datetime.now(UTC).isoformat()
    return stamp.replace("+00:00", "Z") if zulu else stamp


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fresh_token() -> str:
    return secrets.token_urlsafe(32)
