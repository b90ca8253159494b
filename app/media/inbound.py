"""The rules of an inbound ACS media stream, sans I/O: what each received message means.

    AWAITING_METADATA --AudioMetadata--> STREAMING --disconnect / too big--> CLOSED

`InboundStream.receive` takes one ASGI WebSocket message and returns what the session should
do with it: hand an event to the backend, open the backend (`Opened`), or skip a garbled frame
(`Skipped`, already counted). A message that ends the stream raises `StreamEnded`. Tests drive
it without sockets; the session keeps only the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.backends.base import AudioIn, DtmfIn, TranscriptIn
from app.media.protocol import AudioMetadata, MalformedMessage, parse_message
from app.media.stats import MediaStats

# Close codes the session sends (None: the peer closed already).
TOO_BIG = 1009


class StreamState(Enum):
    AWAITING_METADATA = "awaiting_metadata"
    STREAMING = "streaming"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """Why a session ended and how to close the socket (None: the peer already closed)."""

    reason: str
    close_code: int | None
    # The peer went without a close of its own (a TCP reset: 1006): ACS re-establishes such a
    # stream, so the call's backend is parked for it.
    dropped: bool = False


# Close codes of a peer that ended the stream on purpose. Not 1005: uvicorn reports a lost
# connection (a TCP reset) as 1005 once the handshake is done, other servers as 1006.
_CLOSED_BY_PEER = frozenset({1000, 1001})

# The server closed on a text frame that was not UTF-8 before the app saw it.
INVALID_UTF8 = SessionEnd("invalid UTF-8 in a text frame", None)


class StreamEnded(Exception):
    """The message ended the stream."""

    def __init__(self, end: SessionEnd) -> None:
        super().__init__(end.reason)
        self.end = end


@dataclass(frozen=True, slots=True)
class Opened:
    """AudioMetadata started the stream: build and open the backend for it."""

    metadata: AudioMetadata


@dataclass(frozen=True, slots=True)
class Skipped:
    """A frame that was counted as malformed and is skipped; the call goes on."""

    reason: str


Received = AudioIn | DtmfIn | TranscriptIn | Opened | Skipped | None


class InboundStream:
    """One media socket's inbound rules and counters."""

    __slots__ = ("limit", "sample_rate", "state", "stats")

    def __init__(self, max_message_bytes: int, stats: MediaStats) -> None:
        self.limit = max_message_bytes
        self.stats = stats
        self.state = StreamState.AWAITING_METADATA
        self.sample_rate: int | None = None

    def receive(self, message: Mapping[str, Any]) -> Received:
        """What one ASGI message means; raises StreamEnded when it ends the stream."""
        text = message.get("text")
        if text is None:
            return self._not_text(message)
        # The limit is in bytes: ASCII text (ACS's JSON; `isascii` is O(1)) is one byte a char.
        # Enforced here too: `uvicorn app.main:app` itself accepts up to 16 MiB.
        if len(text) > self.limit or (not text.isascii() and len(text.encode()) > self.limit):
            self._close(SessionEnd("message too big", TOO_BIG))
        try:
            parsed = parse_message(text)
        except MalformedMessage as exc:
            return self._skip(str(exc))
        stats = self.stats
        if type(parsed) is AudioIn:
            if self.state is not StreamState.STREAMING:
                return self._skip("AudioData before AudioMetadata")
            stats.frames_in += 1
            return parsed
        if isinstance(parsed, AudioMetadata):
            return self._metadata(parsed)
        if isinstance(parsed, DtmfIn):
            stats.dtmf += parsed.digit
        elif isinstance(parsed, TranscriptIn):
            if parsed.final and parsed.text:
                stats.add_transcript(parsed.participant_id or "caller", parsed.text)
        else:
            return None  # transcription metadata, kinds this bridge does not use
        return parsed if self.state is StreamState.STREAMING else None

    def _not_text(self, message: Mapping[str, Any]) -> Received:
        if message["type"] == "websocket.disconnect":
            code = message.get("code")
            if code == 1007:
                self._close(INVALID_UTF8)
            if code in _CLOSED_BY_PEER:
                self._close(SessionEnd("ACS closed the media socket", None))
            self._close(SessionEnd(f"the media socket dropped ({code})", None, dropped=True))
        if len(message.get("bytes") or b"") > self.limit:
            self._close(SessionEnd("message too big", TOO_BIG))
        return self._skip("binary frame")

    def _metadata(self, metadata: AudioMetadata) -> Received:
        if self.state is StreamState.AWAITING_METADATA:
            self.state = StreamState.STREAMING
            self.sample_rate = self.stats.sample_rate = metadata.sample_rate
            return Opened(metadata)
        if metadata.sample_rate != self.sample_rate:
            return self._skip("AudioMetadata changed the sample rate mid-stream")
        return None  # a repeat of the same format

    def _skip(self, reason: str) -> Skipped:
        self.stats.malformed += 1
        return Skipped(reason)

    def _close(self, end: SessionEnd) -> None:
        self.state = StreamState.CLOSED
        raise StreamEnded(end)
