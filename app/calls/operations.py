"""What the control API does to calls: checks their state, asks ACS or the media owner, records it.

CallControlError (app/calls/control.py, whose other subclasses are ACS's failures)
├── UnknownCall             404  no call with this id in the store
└── ActionRefused           409  the call is not in a state for this action (`code` says why)

Media owner failures surface as `CallBusError` (app/calls/call_bus.py); the edge answers both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.calls import record_changes
from app.calls.call_bus import CallBus
from app.calls.control import CallControl, CallControlError, MediaOptions
from app.calls.models import (
    CallAction,
    CallRecord,
    ConnectionState,
    Direction,
    EndedBy,
    MediaState,
)
from app.calls.store import CallStore
from app.calls.targets import identifier_for_raw_id, parse_target, parse_tones


class UnknownCall(CallControlError):
    status = 404
    code = "call_not_found"

    def __init__(self, call_connection_id: str) -> None:
        super().__init__(f"no call {call_connection_id!r}")


class ActionRefused(CallControlError):
    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AudioStop:
    """The media owner dropped the call's queued audio."""

    instance_id: str
    dropped_frames: int


class CallOperations:
    """The control API's actions on calls, over the store, ACS and the call bus."""

    def __init__(self, store: CallStore, control: CallControl, bus: CallBus) -> None:
        self._store = store
        self._control = control
        self._bus = bus

    async def list(self) -> list[CallRecord]:
        """Every call, with media sockets held by dead instances shown as disconnected."""
        records = await self._store.list()
        connected = [r.call_connection_id for r in records if r.media.connected]
        if not connected:
            return records
        # An instance that died cannot write "disconnected": trust the bus for who is alive.
        held = await self._bus.held(connected)
        return [
            _without_dead_owner(r) if r.media.connected and r.call_connection_id not in held else r
            for r in records
        ]

    async def get(self, call_connection_id: str) -> CallRecord:
        """The call's record; UnknownCall if there is none."""
        record = await self._store.get(call_connection_id)
        if record is None:
            raise UnknownCall(call_connection_id)
        return record

    async def place(
        self,
        target: str,
        source_caller_id: str | None,
        media: MediaOptions,
        *,
        agent: str | None = None,
    ) -> CallRecord:
        """Ask ACS to call `target` and record the outbound call, served by `agent`."""
        placed = await self._control.create(target, source_caller_id, media)
        record = await self._store.update(
            placed.call_connection_id,
            record_changes.new_outbound_call(
                placed.call_connection_id,
                target,
                source_caller_id,
                placed.correlation_id,
                agent,
            ),
        )
        assert record is not None
        return record

    async def start_media(self, call_connection_id: str) -> CallRecord:
        """Ask ACS to start the call's media streaming; the record says it is starting."""
        record = await self._connected_call(call_connection_id)
        if record.media_state in (MediaState.ACTIVE, MediaState.STARTING):
            raise ActionRefused(
                "media_already_active", f"media streaming is {record.media_state.value}"
            )
        return await self._media_request(record, MediaState.STARTING)

    async def stop_media(self, call_connection_id: str) -> CallRecord:
        """Ask ACS to stop the call's media streaming; the record says it is stopping."""
        record = await self._connected_call(call_connection_id)
        if record.media_state not in (MediaState.ACTIVE, MediaState.STARTING):
            raise ActionRefused(
                "media_not_active", f"media streaming is {record.media_state.value}"
            )
        return await self._media_request(record, MediaState.STOPPING)

    async def hang_up(
        self, call_connection_id: str, *, for_everyone: bool, by: EndedBy = EndedBy.API
    ) -> CallRecord:
        """Ask ACS to hang up (for everyone, or only the bridge) and record the request; `by`
        is who the call's `ended_by` names once ACS reports it disconnected."""
        record = await self.get(call_connection_id)
        if record.connection_state is ConnectionState.DISCONNECTED:
            raise ActionRefused("call_ended", "the call has already ended")
        # The cause is on the record before ACS is asked: its CallDisconnected may come first.
        await self._store.update(call_connection_id, record_changes.end_cause(by))
        try:
            await self._control.hang_up(call_connection_id, for_everyone=for_everyone)
        except BaseException:
            await self._store.update(call_connection_id, record_changes.end_cause(None, by))
            raise
        updated = await self._store.update(call_connection_id, record_changes.hang_up_requested(by))
        return updated or record

    async def transfer(
        self, call_connection_id: str, target: str, *, label: str | None = None, by: str = "api"
    ) -> CallAction:
        """Transfer the other party to `target` (checked before any request); `label` names it."""
        identifier = parse_target(target)
        await self._connected_call(call_connection_id)
        action = CallAction(
            kind="transfer",
            operation_context=f"transfer:{uuid.uuid4().hex}",
            detail=label or target,
            requested_by=by,
        )
        await self._control.transfer(
            call_connection_id, identifier, operation_context=action.operation_context
        )
        await self._store.update(call_connection_id, record_changes.action_requested(action))
        return action

    async def send_dtmf(
        self, call_connection_id: str, tones: str, *, by: str = "api"
    ) -> CallAction:
        """Send DTMF to the other party: the caller of an inbound call, the callee otherwise."""
        parsed = parse_tones(tones)
        record = await self._connected_call(call_connection_id)
        other = record.caller if record.direction is Direction.INBOUND else record.callee
        if not other:
            raise ActionRefused("no_other_party", "the call's other party is not known yet")
        action = CallAction(
            kind="send_dtmf",
            operation_context=f"dtmf:{uuid.uuid4().hex}",
            detail=tones.strip().upper(),
            requested_by=by,
        )
        await self._control.send_dtmf(
            call_connection_id,
            parsed,
            identifier_for_raw_id(other),
            operation_context=action.operation_context,
        )
        await self._store.update(call_connection_id, record_changes.action_requested(action))
        return action

    async def stop_audio(self, call_connection_id: str) -> AudioStop:
        """Have the instance holding the call's media socket drop its queued audio (barge-in)."""
        await self.get(call_connection_id)
        reply = await self._bus.request(call_connection_id, "stop_audio")
        return AudioStop(
            instance_id=reply.instance_id,
            dropped_frames=int(reply.result.get("dropped_frames", 0)),
        )

    async def _connected_call(self, call_connection_id: str) -> CallRecord:
        record = await self.get(call_connection_id)
        if record.connection_state is not ConnectionState.CONNECTED:
            raise ActionRefused(
                "call_not_connected", f"the call is {record.connection_state.value}"
            )
        return record

    async def _media_request(self, record: CallRecord, target: MediaState) -> CallRecord:
        call_id = record.call_connection_id
        await self._store.update(call_id, record_changes.media_requested(target))
        try:
            if target is MediaState.STARTING:
                await self._control.start_media(call_id)
            else:
                await self._control.stop_media(call_id)
        except CallControlError as exc:
            await self._store.update(
                call_id, record_changes.media_request_failed(record.media_state, str(exc))
            )
            raise
        return await self._store.get(call_id) or record


def _without_dead_owner(record: CallRecord) -> CallRecord:
    media = record.media.model_copy(update={"connected": False, "close_reason": "owner gone"})
    return record.model_copy(update={"media": media})
