"""Call state as the bridge keeps it: one `CallRecord` per call connection.

Records are plain pydantic models so they serialise the same way to the control API and to a
shared store (Redis). They are replaced, never mutated in place, through `CallStore.update`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_RECENT_EVENTS = 25
MAX_TRANSCRIPT_ENTRIES = 200


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class MediaState(StrEnum):
    DISABLED = "disabled"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MediaFailure(BaseModel):
    """Why media streaming failed, as ACS reported it."""

    status: str | None = None
    status_details: str | None = None
    code: int | None = None
    sub_code: int | None = None
    message: str | None = None
    explanation: str | None = None  # what the subcode means and what to do (app.calls.acs_codes)


class EventSummary(BaseModel):
    """A short record of one event seen for a call (callback, control action, media)."""

    type: str
    time: datetime
    detail: str | None = None


class MediaConnection(BaseModel):
    """The media WebSocket of a call, as seen by the instance that holds it."""

    connected: bool = False
    instance_id: str | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    close_reason: str | None = None
    sample_rate: int | None = None
    frames_in: int = 0
    frames_out: int = 0
    malformed_frames: int = 0
    dropped_frames: int = 0
    dtmf: str = ""


class TranscriptEntry(BaseModel):
    """One final transcript line: `role` is `caller` or `agent` (or a participant id)."""

    role: str
    text: str
    time: datetime
    interrupted: bool = False  # an agent line the caller barged in on (cut where they spoke)


class CallAction(BaseModel):
    """One call action (transfer, DTMF) asked of ACS, and how it turned out."""

    kind: str  # "transfer" | "send_dtmf" | "hang_up"
    operation_context: str
    detail: str | None = None  # the target's name or the tones
    requested_by: str = "api"  # "api" or the backend that asked ("agent")
    requested_at: datetime = Field(default_factory=utcnow)
    outcome: str = "requested"  # requested | accepted | completed | failed
    outcome_detail: str | None = None


class ToolCall(BaseModel):
    """One tool call of a voice agent: arguments (redacted as logs are), outcome, duration."""

    name: str
    arguments: str
    outcome: str  # "ok" | "error"
    result: str  # what went back to the model (trimmed)
    duration_ms: float
    time: datetime


class BackendState(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


class BackendHealth(BaseModel):
    """The call's backend as the media session last saw it; changes are written within a
    second, never per frame."""

    name: str
    state: BackendState = BackendState.CONNECTING
    detail: str | None = None  # why it is reconnecting or failed
    attempts: int = 0  # connection attempts that failed so far
    since: datetime = Field(default_factory=utcnow)  # when it entered `state`


class EndedBy(StrEnum):
    """Who ended the call."""

    CALLER = "caller"  # the other party hung up (a CallDisconnected the bridge did not cause)
    AGENT = "agent"  # a tool or a backend action (hang-up, a completed transfer)
    API = "api"  # the control API
    FAILOVER = "failover"  # the call had no working backend (BACKEND_FAILOVER)
    SHUTDOWN = "shutdown"  # this instance stopped with the call still on it
    ACS = "acs"  # ACS ended it with a failure code


MAX_ACTIONS = 50
MAX_TOOL_CALLS = 100


class CallRecord(BaseModel):
    """Everything the bridge knows about one call."""

    model_config = ConfigDict(validate_assignment=False)

    call_connection_id: str
    server_call_id: str | None = None
    correlation_id: str | None = None
    direction: Direction = Direction.INBOUND
    caller: str | None = None
    caller_display_name: str | None = None
    callee: str | None = None
    agent: str | None = None  # the agent (AGENTS_FILE) serving the call, chosen at its start
    connection_state: ConnectionState = ConnectionState.CONNECTING
    media_state: MediaState = MediaState.DISABLED
    media_failure: MediaFailure | None = None
    media: MediaConnection = Field(default_factory=MediaConnection)
    disconnect_reason: str | None = None
    backend: BackendHealth | None = None
    ended_by: EndedBy | None = None
    # The cause of an ending the bridge asked for (a hang-up, an accepted transfer): it becomes
    # `ended_by` when ACS's CallDisconnected follows.
    end_requested_by: EndedBy | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    last_event_time: datetime | None = None
    recent_events: list[EventSummary] = Field(default_factory=list)
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    actions: list[CallAction] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)

    def with_event(
        self, type_: str, time: datetime | None = None, detail: str | None = None
    ) -> CallRecord:
        """A copy with one more entry in `recent_events` (bounded) and a fresh `updated_at`."""
        now = utcnow()
        events = [*self.recent_events, EventSummary(type=type_, time=time or now, detail=detail)]
        return self.model_copy(
            update={"recent_events": events[-MAX_RECENT_EVENTS:], "updated_at": now}
        )
