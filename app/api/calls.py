"""The control API: list calls, start/stop media streaming, hang up, place calls."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.calls import record_changes
from app.calls.call_bus import CommandFailed, CommandTimeout, NoMediaOwner
from app.calls.control import CallControlError, MediaOptions
from app.calls.models import CallRecord, ConnectionState, MediaState
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
    records = await services.store.list()
    connected = [r.call_connection_id for r in records if r.media.connected]
    if not connected:
        return records
    # An instance that died cannot write "disconnected": trust the bus for who is alive.
    held = await services.bus.held(connected)
    return [
        _without_dead_owner(r) if r.media.connected and r.call_connection_id not in held else r
        for r in records
    ]


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
    await _known_call(services, call_connection_id)
    try:
        reply = await services.bus.request(call_connection_id, "stop_audio", timeout_s=5.0)
    except NoMediaOwner as exc:
        raise ApiError(409, "no_media_socket", "no instance holds the call's media") from exc
    except CommandTimeout as exc:
        raise ApiError(504, "media_owner_timeout", "the media owner did not answer") from exc
    except CommandFailed as exc:
        raise ApiError(409, exc.code, str(exc)) from exc
    return AudioStopped(
        call_connection_id=call_connection_id,
        instance_id=reply.instance_id,
        dropped_frames=int(reply.result.get("dropped_frames", 0)),
    )


@router.get(
    "/{call_connection_id}", summary="One call", response_model=CallRecord, responses=_ERRORS
)
async def get_call(call_connection_id: CallId, services: ServicesDep) -> CallRecord:
    return await _known_call(services, call_connection_id)


@router.post(
    "",
    summary="Place an outbound call with media streaming",
    status_code=201,
    response_model=CallRecord,
    responses=_ERRORS,
)
async def place_call(body: PlaceCallRequest, services: ServicesDep) -> CallRecord:
    media = MediaOptions.from_settings(services.settings)
    if body.media is not None:
        o = body.media
        media = MediaOptions(
            audio_format=o.audio_format or media.audio_format,
            channel=o.channel or media.channel,
            start_on_connect=media.start_on_connect
            if o.start_media_streaming is None
            else o.start_media_streaming,
            bidirectional=media.bidirectional if o.bidirectional is None else o.bidirectional,
            dtmf=media.dtmf if o.dtmf is None else o.dtmf,
        )
    try:
        placed = await services.control.create(body.target, body.source_caller_id, media)
    except CallControlError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    record = await services.store.update(
        placed.call_connection_id,
        record_changes.new_outbound_call(
            placed.call_connection_id, body.target, body.source_caller_id, placed.correlation_id
        ),
    )
    assert record is not None
    return record


@router.post(
    "/{call_connection_id}/media/start",
    summary="Start media streaming",
    status_code=202,
    response_model=ActionAccepted,
    responses=_ERRORS,
)
async def start_media(call_connection_id: CallId, services: ServicesDep) -> ActionAccepted:
    record = await _known_call(services, call_connection_id)
    _require_connected(record)
    if record.media_state in (MediaState.ACTIVE, MediaState.STARTING):
        raise ApiError(
            409, "media_already_active", f"media streaming is {record.media_state.value}"
        )
    return await _media_action(services, record, MediaState.STARTING)


@router.post(
    "/{call_connection_id}/media/stop",
    summary="Stop media streaming",
    status_code=202,
    response_model=ActionAccepted,
    responses=_ERRORS,
)
async def stop_media(call_connection_id: CallId, services: ServicesDep) -> ActionAccepted:
    record = await _known_call(services, call_connection_id)
    _require_connected(record)
    if record.media_state not in (MediaState.ACTIVE, MediaState.STARTING):
        raise ApiError(409, "media_not_active", f"media streaming is {record.media_state.value}")
    return await _media_action(services, record, MediaState.STOPPING)


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
    record = await _known_call(services, call_connection_id)
    if record.connection_state is ConnectionState.DISCONNECTED:
        raise ApiError(409, "call_ended", "the call has already ended")
    try:
        await services.control.hang_up(call_connection_id, for_everyone=for_everyone)
    except CallControlError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    updated = (
        await services.store.update(call_connection_id, record_changes.hang_up_requested())
        or record
    )
    return ActionAccepted(call_connection_id=call_connection_id, action="hang_up", call=updated)


async def _known_call(services: ServicesDep, call_connection_id: str) -> CallRecord:
    record = await services.store.get(call_connection_id)
    if record is None:
        raise ApiError(404, "call_not_found", f"no call {call_connection_id!r}")
    return record


def _without_dead_owner(record: CallRecord) -> CallRecord:
    media = record.media.model_copy(update={"connected": False, "close_reason": "owner gone"})
    return record.model_copy(update={"media": media})


def _require_connected(record: CallRecord) -> None:
    if record.connection_state is not ConnectionState.CONNECTED:
        raise ApiError(409, "call_not_connected", f"the call is {record.connection_state.value}")


async def _media_action(
    services: ServicesDep, record: CallRecord, target: MediaState
) -> ActionAccepted:
    call_id = record.call_connection_id
    await services.store.update(call_id, record_changes.media_requested(target))
    try:
        if target is MediaState.STARTING:
            await services.control.start_media(call_id)
        else:
            await services.control.stop_media(call_id)
    except CallControlError as exc:
        await services.store.update(
            call_id, record_changes.media_request_failed(record.media_state, str(exc))
        )
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    updated = await services.store.get(call_id) or record
    action = "start_media" if target is MediaState.STARTING else "stop_media"
    return ActionAccepted(call_connection_id=call_id, action=action, call=updated)
