"""Test calls through the embedded ACS emulator (only when the emulator is the service's ACS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import HTTPConnection

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.calls.targets import InvalidTones, parse_tones
from app.security.dependencies import ControlKeyDep
from app.services import Services

if TYPE_CHECKING:  # the emulator is imported only when it runs
    from app.emulator import EmulatedCall
    from app.emulator.caller_script import StreamScript

router = APIRouter(prefix="/api/emulator", tags=["emulator"], dependencies=[ControlKeyDep])

PARTY_PATTERN = r"^(\+[1-9]\d{6,14}|8:[A-Za-z0-9:_\-.]+)$"  # +E.164, or an ACS/Teams raw id
DEFAULT_CALLER = "+14255550123"
# The emulated resource's number (the emulator's DEFAULT_CALLEE, not imported from it: the
# emulator's modules load only when it runs).
DEFAULT_CALLEE = "+18005550100"
# A test call placed and forgotten would stream (and bill a paid backend) for ever.
DEFAULT_HANG_UP_AFTER_S = 60.0
MAX_HANG_UP_AFTER_S = 4 * 3600.0
FRAMES_PER_S = 50  # ACS streams 20 ms frames
MAX_ERROR_TEXT = 300


class DtmfPress(BaseModel):
    """Keys the caller presses, `at_s` seconds into the media stream."""

    model_config = ConfigDict(extra="forbid")

    at_s: float = Field(ge=0, le=MAX_HANG_UP_AFTER_S, description="seconds into the stream")
    digits: str = Field(min_length=1, max_length=100, description="0-9 * # A-D, e.g. `12#`")

    @field_validator("digits")
    @classmethod
    def _dtmf_digits(cls, value: str) -> str:
        try:
            parse_tones(value)  # the rule of the control API's DTMF route
        except InvalidTones as exc:
            raise ValueError(str(exc)) from None
        return value.strip().upper()


class TestCallRequest(BaseModel):
    """A scripted caller: who calls whom, what they say, which keys they press, when they hang
    up. Every field is optional."""

    # A misspelt field (`hangup_after_s`) is refused rather than silently ignored.
    model_config = ConfigDict(extra="forbid")

    caller: str = Field(default=DEFAULT_CALLER, pattern=PARTY_PATTERN)
    caller_display_name: str = Field(default="Test Caller", max_length=100)
    to: str = Field(
        default=DEFAULT_CALLEE,
        pattern=PARTY_PATTERN,
        description="the called number or identity: the IncomingCall's `to`",
    )
    audio: Literal["speech", "silence", "tone"] = Field(
        default="speech",
        description="what the caller says: the bundled recording (looped), silence, or a "
        "440 Hz tone",
    )
    dtmf: list[DtmfPress] = Field(default_factory=list, max_length=100)
    hang_up_after_s: float = Field(
        default=DEFAULT_HANG_UP_AFTER_S,
        gt=0,
        le=MAX_HANG_UP_AFTER_S,
        description="the caller hangs up this long after the answer",
    )


class TestCallPlaced(BaseModel):
    event_id: str
    call_connection_id: str | None
    webhook_status: int | None
    hang_up_after_s: float


@router.post(
    "/calls",
    status_code=201,
    response_model=TestCallPlaced,
    summary="Place a simulated incoming call (embedded emulator only)",
    responses={
        400: {"description": "The request is not valid"},
        404: {"description": "The emulator is not this service's ACS"},
        502: {"description": "The webhook refused the IncomingCall (its error included)"},
    },
)
async def place_test_call(
    request: Request, services: ServicesDep, body: TestCallRequest | None = None
) -> TestCallPlaced:
    body = body or TestCallRequest()
    script = _caller_script(body) if {"audio", "dtmf"} & body.model_fields_set else None
    placed = await place_call(
        request,
        services,
        caller=body.caller,
        caller_display_name=body.caller_display_name,
        to=body.to,
        script=script,
        hang_up_after_s=body.hang_up_after_s,
    )
    return TestCallPlaced(
        event_id=placed.event_id,
        call_connection_id=placed.call.call_connection_id if placed.call else None,
        webhook_status=placed.webhook_status,
        hang_up_after_s=body.hang_up_after_s,
    )


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """An incoming call the emulator delivered to this service, and the call it answered."""

    event_id: str
    call: EmulatedCall | None  # None: the service did not answer it
    webhook_status: int


async def place_call(
    connection: HTTPConnection,
    services: Services,
    *,
    caller: str,
    caller_display_name: str,
    to: str | None = None,
    script: StreamScript | None = None,
    hang_up_after_s: float | None = None,
) -> PlacedCall:
    """Ring this service from the embedded emulator: Event Grid IncomingCall, answered through
    the SDK like any call. Raises ApiError (404 no emulator, 409 unreachable, 502 refused)."""
    emulator = services.emulator
    if emulator is None:
        raise ApiError(404, "emulator_off", "test calls need the embedded ACS emulator")
    settings = services.settings  # pointed at the emulator, public URL included
    _check_reachable(connection, settings.public_url("/"))
    url = settings.public_url("/api/incomingCall")
    if settings.eventgrid_secret is not None:
        url += f"?code={settings.eventgrid_secret.get_secret_value()}"
    delivery = await emulator.place_incoming_call(
        url,
        caller=caller,
        callee=to,
        caller_display_name=caller_display_name,
        script=script,
        hang_up_after_s=hang_up_after_s,
    )
    call = await emulator.call_for_context(delivery.incoming_call_context)
    result = delivery.deliveries[0] if delivery.deliveries else None
    if result is None or result.status is None:
        why = result.error if result is not None else None
        raise ApiError(502, "test_call_failed", f"the webhook could not be reached: {why}")
    if result.status >= 300:
        message = f"the webhook answered {result.status}"
        said = _error_text(result.body)
        raise ApiError(502, "test_call_failed", f"{message}: {said}" if said else message)
    if call is None and emulator.rejection(delivery.incoming_call_context) is not None:
        raise ApiError(
            409, "call_rejected", f"the service rejected the call to {to}: no agent answers it"
        )
    return PlacedCall(event_id=delivery.event_id, call=call, webhook_status=result.status)


def _caller_script(body: TestCallRequest) -> StreamScript:
    """The emulator's media script for what the request's caller says and presses."""
    from app.emulator.caller_script import StreamScript

    presses = [
        (round(press.at_s * FRAMES_PER_S), digit) for press in body.dtmf for digit in press.digits
    ]
    return StreamScript(sound=body.audio, dtmf=presses)


def _error_text(body: str) -> str:
    """What a refusing webhook said: its JSON error's message, else its body, kept short."""
    text = body.strip()
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        message = error.get("message") if isinstance(error, dict) else parsed.get("detail")
        if isinstance(message, str) and message.strip():
            text = message.strip()
    # Control characters from a foreign body would garble the one-line error.
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:MAX_ERROR_TEXT] + ("…" if len(text) > MAX_ERROR_TEXT else "")


def _check_reachable(connection: HTTPConnection, public_url: str) -> None:
    """Refuse a test call the emulator could not deliver: the service listens elsewhere.

    The embedded emulator reaches the service at PUBLIC_BASE_URL, by default
    http://127.0.0.1:<PORT>; `uvicorn app.main:app --port N` without PORT=N would miss it.
    """
    target = urlsplit(public_url)
    server = connection.scope.get("server")
    if target.hostname != "127.0.0.1" or not server or server[1] == target.port:
        return
    raise ApiError(
        409,
        "emulator_unreachable",
        f"the embedded ACS emulator reaches this service at {target.scheme}://"
        f"{target.netloc} but it listens on port {server[1]}: set PORT={server[1]} "
        "(or PUBLIC_BASE_URL)",
    )
