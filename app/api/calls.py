"""The control API: list calls, start/stop media streaming, hang up, place calls."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.calls.control import MediaOptions
from app.calls.models import CallAction, CallRecord
from app.security.dependencies import ControlKeyDep
from app.settings import AudioChannel, AudioFormatName

router = APIRouter(prefix="/api/calls", tags=["calls"], dependencies=[ControlKeyDep])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or wrong control API key"},
    404: {"description": "Unknown call"},
    409: {"description": "The call is not in a state for this action"},
    502: {"description": "ACS failed"},
    503: {"description": "ACS is not configured"},
}
_TARGET = re.compile(r"^(\+[1-9]\d{6,14}|8:[a-z0-9:_\-.]+)$", re.IGNORECASE)

CallId = Annotated[str, Path(min_length=1, max_length=256, description="The call connection id")]


class MediaOverrides(BaseModel):
    """Media streaming choices for an outbound call; unset fields use the settings."""

    model_config = ConfigDict(extra="forbid")

    audio_format: AudioFormatName | None = None
    channel: AudioChannel | None = None
    start_media_streaming: bool | None = None
    bidirectional: bool | None = None
    dtmf: bool | None = None

    def applied_to(self, defaults: MediaOptions) -> MediaOptions:
        """`defaults` with the fields this request sets replaced."""
        return MediaOptions(
            audio_format=self.audio_format or defaults.audio_format,
            channel=self.channel or defaults.channel,
            start_on_connect=defaults.start_on_connect
            if self.start_media_streaming is None
            else self.start_media_streaming,
            bidirectional=defaults.bidirectional
            if self.bidirectional is None
            else self.bidirectional,
            dtmf=defaults.dtmf if self.dtmf is None else self.dtmf,
        )


class PlaceCallRequest(BaseModel):
    """An outbound call to a phone number (E.164) or an ACS user id."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"target": "+14255550123", "source_caller_id": "+18005550100"}]
        },
    )

    target: str = Field(description="E.164 phone number (+14255550123) or ACS user (8:acs:...)")
    source_caller_id: str | None = Field(
        default=None, description="E.164 number shown to a PSTN callee (required by ACS for PSTN)"
    )
    media: MediaOverrides | None = None
    agent: str | None = Field(
        default=None, max_length=64, description="The agent (AGENTS_FILE) serving the call"
    )

    @field_validator("target")
    @classmethod
    def _valid_target(cls, value: str) -> str:
        if not _TARGET.match(value):
            raise ValueError("target must be an E.164 number (+1...) or an ACS user id (8:...)")
        return value

    @field_validator("source_caller_id")
    @classmethod
    def _valid_source(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\+[1-9]\d{6,14}$", value):
            raise ValueError("source_caller_id must be an E.164 number")
        return value


class ActionAccepted(BaseModel):
    """ACS accepted the request; the call's state changes when its callback arrives."""

    call_connection_id: str
    action: str
    call: CallRecord


@router.get(
    "",
    summary="List calls (all instances); media.instance_id says which holds each media socket",
    response_model=list[CallRecord],
    responses=_ERRORS,
)
async def list_calls(services: ServicesDep) -> list[CallRecord]:
    return await services.operations.list()


class AudioStopped(BaseModel):
    """The instance holding the call's media socket dropped its queued audio."""

    call_connection_id: str
    instance_id: str
    dropped_frames: int


@router.post(
    "/{call_connection_id}/audio/stop",
    summary="Stop the audio playing into the call now (barge-in), on the instance holding it",
    response_model=AudioStopped,
    responses={**_ERRORS, 504: {"description": "The owning instance did not answer in time"}},
)
async def stop_audio(call_connection_id: CallId, services: ServicesDep) -> AudioStopped:
    stopped = await services.operations.stop_audio(call_connection_id)
    return AudioStopped(
        call_connection_id=call_connection_id,
        instance_id=stopped.instance_id,
        dropped_frames=stopped.dropped_frames,
    )


@router.get(
    "/{call_connection_id}", summary="One call", response_model=CallRecord, responses=_ERRORS
)
async def get_call(call_connection_id: CallId, services: ServicesDep) -> CallRecord:
    return await services.operations.get(call_connection_id)


@router.post(
    "",
    summary="Place an outbound call with media streaming",
    status_code=201,
    response_model=CallRecord,
    responses={**_ERRORS, 400: {"description": "Unknown agent or invalid target"}},
)
async def place_call(body: PlaceCallRequest, services: ServicesDep) -> CallRecord:
    agent = services.agents.named(body.agent)
    if agent is None:
        wanted = f"no agent named {body.agent!r}" if body.agent else "no default agent: name one"
        raise ApiError(400, "unknown_agent", f"{wanted} (GET /api/agents lists them)")
    media = MediaOptions.from_settings(services.settings)
    if body.media is not None:
        media = body.media.applied_to(media)
    record = await services.operations.place(
        body.target, body.source_caller_id, media, agent=agent.name
    )
    services.metrics.call_routed(agent.name)
    return record


@router.post(
    "/{call_connection_id}/media/start",
    summary="Start media streaming",
    status_code=202,
    response_model=ActionAccepted,
    responses=_ERRORS,
)
async def start_media(call_connection_id: CallId, services: ServicesDep) -> ActionAccepted:
    record = await services.operations.start_media(call_connection_id)
    return ActionAccepted(call_connection_id=call_connection_id, action="start_media", call=record)


@router.post(
    "/{call_connection_id}/media/stop",
    summary="Stop media streaming",
    status_code=202,
    response_model=ActionAccepted,
    responses=_ERRORS,
)
async def stop_media(call_connection_id: CallId, services: ServicesDep) -> ActionAccepted:
    record = await services.operations.stop_media(call_connection_id)
    return ActionAccepted(call_connection_id=call_connection_id, action="stop_media", call=record)


@router.delete(
    "/{call_connection_id}",
    summary="Hang up (for everyone with for_everyone=true)",
    status_code=202,
    response_model=ActionAccepted,
    responses=_ERRORS,
)
async def hang_up(
    call_connection_id: CallId,
    services: ServicesDep,
    for_everyone: Annotated[
        bool, Query(description="Terminate the call for all participants")
    ] = False,
) -> ActionAccepted:
    record = await services.operations.hang_up(call_connection_id, for_everyone=for_everyone)
    return ActionAccepted(call_connection_id=call_connection_id, action="hang_up", call=record)


class TransferRequest(BaseModel):
    """Where to transfer the call's other party."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"target": "+14255550100"}]}
    )

    target: str = Field(
        min_length=1,
        max_length=256,
        description="+E.164 number, ACS user (8:acs:...) or Teams user (8:orgid:<object id>)",
    )


class DtmfRequest(BaseModel):
    """DTMF tones to send to the call's other party."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"tones": "123#"}]})

    tones: str = Field(min_length=1, max_length=18, description="0-9 * # A-D")


class CallActionAccepted(BaseModel):
    """ACS accepted the action; its outcome callback updates `actions` on the call."""

    call_connection_id: str
    action: CallAction


@router.post(
    "/{call_connection_id}/transfer",
    summary="Transfer the call's other party (the call then ends for the bridge)",
    status_code=202,
    response_model=CallActionAccepted,
    responses={**_ERRORS, 400: {"description": "The target is not a valid identifier"}},
)
async def transfer(
    call_connection_id: CallId, body: TransferRequest, services: ServicesDep
) -> CallActionAccepted:
    action = await services.operations.transfer(call_connection_id, body.target)
    return CallActionAccepted(call_connection_id=call_connection_id, action=action)


@router.post(
    "/{call_connection_id}/dtmf",
    summary="Send DTMF tones to the call's other party",
    status_code=202,
    response_model=CallActionAccepted,
    responses={**_ERRORS, 400: {"description": "Not DTMF tones"}},
)
async def send_dtmf(
    call_connection_id: CallId, body: DtmfRequest, services: ServicesDep
) -> CallActionAccepted:
    action = await services.operations.send_dtmf(call_connection_id, body.tones)
    return CallActionAccepted(call_connection_id=call_connection_id, action=action)
