"""The `websocket` backend's wire format, without I/O (docs/websocket-backend.md).

Bridge -> downstream: the text messages built here (`start`, `dtmf`, `transcript`,
`call_event`, `replay` and `live`, `action_result`, `stop`); binary frames are PCM and never
pass through this module.

Downstream -> bridge: `parse_control` turns one text frame into a `ControlMessage`, or raises
`MalformedMessage`, which the backend answers with a failed `action_result`:

    ControlMessage = StopAudio | EndSession | AgentTranscript | ActionRequest
    MalformedMessage(code, message, action, request_id) -> .result() -> action_result dict
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.backends.base import ActionAccepted, CallContext, CallEventIn, DtmfIn, TranscriptIn

ActionName = Literal["hang_up", "transfer", "send_dtmf"]

DEFAULT_END_REASON = "downstream ended the session"


@dataclass(frozen=True, slots=True)
class StopAudio:
    """Barge-in: drop the call's queued outbound audio."""


@dataclass(frozen=True, slots=True)
class EndSession:
    """End the media session (the phone call stays up)."""

    reason: str = DEFAULT_END_REASON


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    """What the agent said, for the call's record."""

    text: str


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A call action the downstream asked for: `argument` is the target or the tones."""

    action: ActionName
    argument: str = ""
    id: str | None = None


ControlMessage = StopAudio | EndSession | AgentTranscript | ActionRequest


class MalformedMessage(Exception):
    """A downstream text message the bridge cannot act on; answered as a failed action_result."""

    def __init__(
        self, code: str, message: str, *, action: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.action = action
        self.request_id = request_id

    def result(self) -> dict[str, Any]:
        return action_result(self.action, self.request_id, failure=(self.code, self.message))


def parse_control(text: str) -> ControlMessage:
    """A text frame as a control message; raises MalformedMessage saying what is wrong."""
    try:
        control = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(
            "invalid_json", f"the text frame is not JSON ({exc.msg} at character {exc.pos})"
        ) from None
    except RecursionError:
        # json.loads recurses per nesting level: a hostile frame must not escape as an error.
        raise MalformedMessage("invalid_json", "the text frame nests JSON too deeply") from None
    if not isinstance(control, dict):
        raise MalformedMessage(
            "invalid_message", f"the JSON must be an object, not {_json_kind(control)}"
        )
    raw_id = control.get("id")
    # Any refusal echoes a string `id`, so a downstream can match it to what it sent.
    request_id = raw_id if isinstance(raw_id, str) else None
    kind = control.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage(
            "invalid_message", 'the object needs a string "type"', request_id=request_id
        )
    if kind == "stop_audio":
        return StopAudio()
    if kind == "end":
        reason = control.get("reason")
        return EndSession(reason if isinstance(reason, str) and reason else DEFAULT_END_REASON)
    if kind == "transcript":
        text_ = control.get("text")
        if not isinstance(text_, str):
            raise _invalid_field(kind, 'transcript needs a string "text"', request_id)
        return AgentTranscript(text_)
    if raw_id is not None and request_id is None:
        raise _invalid_field(kind, '"id" must be a string', None)
    return _parse_action(control, kind, request_id)


def _parse_action(control: Mapping[str, Any], kind: str, request_id: str | None) -> ActionRequest:
    if kind == "hang_up":
        return ActionRequest("hang_up", id=request_id)
    if kind == "transfer":
        return ActionRequest(
            "transfer", _text_field(control, kind, "target", request_id), request_id
        )
    if kind == "send_dtmf":
        return ActionRequest(
            "send_dtmf", _text_field(control, kind, "tones", request_id), request_id
        )
    raise MalformedMessage(
        "unknown_type",
        f"unknown message type {kind!r} (known: stop_audio, transcript, end, hang_up, transfer, "
        "send_dtmf)",
        action=kind,
        request_id=request_id,
    )


def _text_field(control: Mapping[str, Any], kind: str, name: str, request_id: str | None) -> str:
    value = control.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid_field(kind, f'{kind} needs a non-empty string "{name}"', request_id)
    return value.strip()


def _invalid_field(kind: str, message: str, request_id: str | None) -> MalformedMessage:
    return MalformedMessage("invalid_field", message, action=kind, request_id=request_id)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def action_result(
    action: str | None,
    request_id: str | None,
    *,
    accepted: ActionAccepted | None = None,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The `action_result` answering one request: `accepted` by ACS, or a (code, message)."""
    result: dict[str, Any] = {
        "type": "action_result",
        "action": action,
        "ok": failure is None,
        "error": failure[1] if failure else None,
        "code": failure[0] if failure else None,
        "operation_context": accepted.operation_context if accepted else None,
    }
    if request_id is not None:
        result["id"] = request_id
    return result


# --- bridge -> downstream --------------------------------------------------------------------


def start_message(call: CallContext, sample_rate: int, *, resumed: bool) -> str:
    return json.dumps(
        {
            "type": "start",
            "resumed": resumed,
            "callConnectionId": call.call_connection_id,
            "correlationId": call.correlation_id,
            "caller": call.caller,
            "callee": call.callee,
            "sampleRate": sample_rate,
            "channels": 1,
            "encoding": "pcm_s16le",
            "audioChannel": call.channel,
        }
    )


# Call Automation spells tones as names (DtmfTone: "pound", "asterisk", "one", ...); the
# downstream always gets the key's own character.
_TONE_NAMES = {
    **{
        name: str(digit)
        for digit, name in enumerate(
            ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
        )
    },
    "asterisk": "*",
    "star": "*",
    "pound": "#",
    "hash": "#",
}
_KEYS = frozenset("0123456789*#ABCD")


def dtmf_key(tone: str) -> str | None:
    """The key `tone` names, as one of `0-9 * # A-D`; None when it names no key."""
    if len(tone) == 1:
        key = tone.upper()
        return key if key in _KEYS else None
    return _TONE_NAMES.get(tone.strip().lower())


def dtmf_message(event: DtmfIn, key: str) -> str:
    return json.dumps({"type": "dtmf", "digit": key, "participant": event.participant_id})


def transcript_message(event: TranscriptIn) -> str:
    return json.dumps(
        {
            "type": "transcript",
            "text": event.text,
            "final": event.final,
            "participant": event.participant_id,
        }
    )


def call_event_message(event: CallEventIn) -> str:
    """A Call Automation event as the downstream gets it: `call_event` with the event's data."""
    data = {key: value for key, value in event.data.items() if key not in ("type", "event")}
    return json.dumps({"type": "call_event", "event": event.name, **data}, default=str)


def replay_message(frames: list[bytes], bytes_per_ms: int) -> str:
    """Announces kept audio: the binary frames up to `LIVE_MESSAGE` were spoken earlier."""
    return json.dumps({"type": "replay", "ms": sum(map(len, frames)) // bytes_per_ms})


LIVE_MESSAGE = json.dumps({"type": "live"})
STOP_MESSAGE = json.dumps({"type": "stop"})
