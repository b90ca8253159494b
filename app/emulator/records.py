"""What the emulator remembers: calls, offered incoming calls, and a record of all traffic."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the media client imports these records
    from app.emulator.caller_script import StreamScript

# `transferring` lasts from an accepted transferToParticipant request to its outcome.
CallState = Literal["connecting", "connected", "transferring", "disconnected"]
MediaSubscriptionState = Literal["disabled", "inactive", "active"]
Direction = Literal["inbound", "outbound"]


@dataclass
class EmulatedCall:
    """One call connection as the emulated service holds it."""

    call_connection_id: str
    server_call_id: str
    correlation_id: str
    callback_uri: str
    operation_context: str | None
    source: dict[str, Any] | None
    targets: list[dict[str, Any]]
    caller: str | None
    state: CallState = "connecting"
    media_options: dict[str, Any] | None = None  # mediaStreamingOptions exactly as on the wire
    media_state: MediaSubscriptionState = "disabled"
    answer_body: dict[str, Any] | None = None  # the whole answer/create request body
    direction: Direction = "inbound"
    caller_display_name: str | None = None
    media_subscription_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    participants_sequence: int = 0
    sent_tones: list[str] = field(default_factory=list)  # every tone sendDtmfTones accepted
    transfer_target: dict[str, Any] | None = None  # set once a transfer is accepted
    caller_script: StreamScript | None = None  # what this call's caller says (else the client's)

    @property
    def is_disconnected(self) -> bool:
        return self.state == "disconnected"


@dataclass
class OfferedCall:
    """An incoming call announced through Event Grid and not yet expired."""

    incoming_call_context: str
    server_call_id: str
    correlation_id: str
    caller: str
    callee: str
    caller_display_name: str
    answered_call_id: str | None = None
    caller_script: StreamScript | None = None  # what the caller says once answered
    hang_up_after_s: float | None = None  # the caller hangs up this long after the answer
    rejected_reason: str | None = None  # set once the service rejected the call (reject_call)


@dataclass
class RecordedRequest:
    """One REST request the emulator received, with the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when absent or not JSON
    status: int = 0
    raw_path: str = ""  # path and query exactly as sent (and signed)
    raw_body: bytes = b""  # the body bytes exactly as sent (their hash is signed)


@dataclass
class SentCallback:
    """One callback POST: the events sent and the receiver's status, or why it failed."""

    url: str
    events: list[dict[str, Any]]
    status: int | None = None
    error: str | None = None

    @property
    def event_types(self) -> list[str]:
        return [str(event.get("type", "")) for event in self.events]


@dataclass(frozen=True)
class DeliveryResult:
    """One Event Grid delivery attempt: the webhook's HTTP status and body, or the error."""

    status: int | None
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class IncomingCallDelivery:
    """The IncomingCall event that was delivered and how each delivery went."""

    event_id: str
    incoming_call_context: str
    correlation_id: str
    server_call_id: str
    event: dict[str, Any]
    deliveries: list[DeliveryResult]


@dataclass(frozen=True)
class WebhookValidation:
    """The outcome of an Event Grid subscription handshake."""

    schema: Literal["eventgrid", "cloudevents"]
    status: int
    headers: dict[str, str]
    body: str
    validation_code: str | None  # eventgrid only: the code the webhook must echo
    origin: str | None  # cloudevents only: the WebHook-Request-Origin sent

    @property
    def ok(self) -> bool:
        """True when the webhook answered the handshake as Event Grid requires."""
        if self.status != 200:
            return False
        if self.schema == "cloudevents":
            allowed = {k.lower(): v for k, v in self.headers.items()}.get("webhook-allowed-origin")
            return allowed in {self.origin, "*"}
        try:
            answer = json.loads(self.body)
        except (ValueError, RecursionError):  # a webhook answering `[[[[...` fails the handshake
            return False
        return isinstance(answer, dict) and answer.get("validationResponse") == self.validation_code
