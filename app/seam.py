"""The backend seam: what a call's audio is relayed to, and how it talks back.

One backend instance serves one call. The media session calls `open` once, then `receive` for
each inbound event in order, then `close` exactly once, whatever happened. A backend that runs
background work (a downstream socket reader, say) owns those tasks and cancels and awaits them
in `close`. A slow backend cannot stall the socket: a call that has to wait is finished by the
session's feeder task while later events queue (`app.media.feed`); one that does not wait
completes on the spot, so a backend needs no second, non-waiting entry point.

Audio crosses this seam as 16-bit little-endian mono PCM at `Backend.sample_rate` (or the
call's rate when that is None); the session resamples, frames and paces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.settings import AudioChannel


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """The call's audio stream as ACS announced it in AudioMetadata."""

    sample_rate: int
    channels: int = 1
    frame_ms: int = 20

    @property
    def frame_bytes(self) -> int:
        """Bytes of one 16-bit frame (640 at 16 kHz, 960 at 24 kHz)."""
        return self.sample_rate * 2 * self.channels * self.frame_ms // 1000


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a backend knows about the call it serves."""

    call_connection_id: str
    correlation_id: str | None
    stream: StreamFormat
    channel: AudioChannel = "mixed"
    bidirectional: bool = True
    caller: str | None = None
    callee: str | None = None
    subscription_id: str | None = None
    # The conversation so far, (role, text) oldest first, when the call's media was served
    # before (a stream re-established on another instance, or after the resume window).
    history: tuple[tuple[str, str], ...] = ()


def log_fields(call: CallContext | None) -> dict[str, str | None]:
    """The `extra` of a log line about `call` (None: not opened yet)."""
    return {
        "call_connection_id": call.call_connection_id if call else None,
        "correlation_id": call.correlation_id if call else None,
    }


# Not frozen: 50 are built a second per call, and a frozen dataclass takes four times as long.
@dataclass(slots=True)
class AudioIn:
    """One inbound frame of caller audio (16-bit PCM): parsed at the call's sample rate, handed
    to the backend at the backend's (`Backend.sample_rate`)."""

    pcm: bytes
    participant_id: str | None = None
    silent: bool = False
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class DtmfIn:
    """A DTMF tone the caller pressed."""

    digit: str
    participant_id: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptIn:
    """A transcription result streamed by ACS on the media socket."""

    text: str
    final: bool
    participant_id: str | None = None
    confidence: float | None = None
    offset: int | None = None
    duration: int | None = None


@dataclass(frozen=True, slots=True)
class CallEventIn:
    """A Call Automation event about the call the backend should know of.

    `name`: CallTransferAccepted, CallTransferFailed, SendDtmfTonesCompleted,
    SendDtmfTonesFailed; `data` holds `operation_context` and, for failures, `code`, `sub_code`
    and `message` (ACS's resultInformation).
    """

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


InboundEvent = AudioIn | DtmfIn | TranscriptIn | CallEventIn


@dataclass(frozen=True, slots=True)
class ActionAccepted:
    """ACS accepted a call action; its outcome arrives later as a `CallEventIn`."""

    action: Literal["hang_up", "transfer", "send_dtmf"]
    operation_context: str


class ActionFailed(Exception):
    """A call action was refused before or by ACS: `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallActions(Protocol):
    """What a backend may do to its call (only what the operator allows reaches ACS)."""

    async def hang_up(self) -> ActionAccepted:
        """Hang up the call for everyone."""
        ...

    async def transfer(self, target: str) -> ActionAccepted:
        """Transfer the other party to `target` (+E.164, 8:acs:..., a Teams user 8:orgid:...)."""
        ...

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        """Send DTMF `tones` (0-9 * # A-D) to the other party (the caller of an inbound call)."""
        ...


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """Something a backend reports about the call (transcript, latency, error, ...).

    `kind` examples: "transcript" (data: role, text), "turn_latency" (data: ms),
    "error" (data: message, fatal), "tool_call".

    The backend's health, which the call's record shows and BACKEND_FAILOVER acts on, comes
    from three kinds every backend reports: "connected" (data: backend) each time it is ready
    to serve the call's audio (at once for a backend with nothing to connect to),
    "reconnect" (data: backend, attempt, reason) each time it is unavailable (a failed first
    connect included), and a fatal "error" (then `MediaOutput.end`) when it gives up.
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


class MediaOutput(Protocol):
    """The call's outbound side, as a backend sees it."""

    async def play(self, pcm: bytes, *, playback_id: str | None = None) -> None:
        """Queue audio of any length for the caller; waits only while the outbound buffer is
        full (otherwise it completes without suspending)."""
        ...

    async def end_of_playback(self, playback_id: str | None = None) -> None:
        """`playback_id` is complete: queue what is still held back for it (the resampler's
        tail, a last partial frame padded with silence) so it plays to its last sample, and
        its heard time can reach its full length. Call it after the playback's last `play`."""
        ...

    def stop_audio(self) -> None:
        """Barge-in: drop all queued audio and send StopAudio to ACS ahead of anything else."""
        ...

    def heard_ms(self, playback_id: str) -> float:
        """Estimated milliseconds of `playback_id` the caller has heard so far."""
        ...

    def report(self, event: BackendEvent) -> None:
        """Record an event on the call's state and in the logs."""
        ...

    def end(self, reason: str) -> None:
        """End the media session (a fatal backend error); the ACS call itself stays up."""
        ...


class Backend(Protocol):
    """A per-call audio backend."""

    @property
    def sample_rate(self) -> int | None:
        """The PCM rate the backend wants both ways; None means the call's own rate."""
        ...

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        """Prepare for the call (connect downstream, open files); keep `actions` to act on it."""
        ...

    async def receive(self, event: InboundEvent) -> None:
        """Handle one inbound event; called in order, one at a time."""
        ...

    async def close(self) -> None:
        """Release everything the backend holds for the call; called exactly once."""
        ...


class BackendError(Exception):
    """A backend failed; `fatal` ends the media session, otherwise the call goes on."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal
