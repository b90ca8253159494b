"""ACS media messages as the load generator sends and reads them, without any I/O.

With byte markers (the default), each outbound AudioData frame carries a 12-byte marker at
the start of its PCM: the magic `ACSB`, the call index and the frame's sequence number. The
marker is a multiple of 3 bytes, so its base64 is a fixed-size prefix of the frame's base64
and the rest of the frame is encoded once per run. An echoed frame is matched back to its call
and sequence number by decoding only those 16 characters. With audio markers the frames carry
instead a call's marked audio (`bench.audio_markers`), which survives resampling.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import time
from array import array
from dataclasses import dataclass
from typing import Final, Literal

from bench.audio_markers import marked_frames_b64

MAGIC: Final = b"ACSB"
MARKER = struct.Struct("<4sII")
MARKER_B64_LEN: Final = 16  # base64 of MARKER.size (12) bytes
FRAME_MS: Final = 20
# "bytes": a marker at the start of each frame's PCM (echo paths: the bytes come back as sent);
# "audio": markers in the audio itself (bench.audio_markers: paths that resample).
Markers = Literal["bytes", "audio"]
_UNMARKED_TAIL: Final = b'","silent":false}}'

# Audio data in an echoed message, PascalCase (Microsoft's samples) or camelCase, any spacing.
_DATA_FIELD = re.compile(rb'"[Dd]ata"\s*:\s*"')
_STOP_AUDIO = re.compile(rb'"[Kk]ind"\s*:\s*"StopAudio"')


def frame_bytes(sample_rate: int) -> int:
    """Bytes of one 20 ms mono PCM16 frame (640 at 16 kHz, 960 at 24 kHz)."""
    return sample_rate * 2 * FRAME_MS // 1000


def tone_pcm(sample_rate: int, n_bytes: int, hz: float = 440.0, amplitude: int = 3000) -> bytes:
    """A sine tone as PCM16LE: audible, non-silent content for the frame body."""
    samples = array(
        "h",
        (
            int(amplitude * math.sin(2 * math.pi * hz * i / sample_rate))
            for i in range(n_bytes // 2)
        ),
    )
    return samples.tobytes()


@dataclass(frozen=True, slots=True)
class EchoedFrame:
    """What an echoed AudioData message carried: its marker, and whether the body is intact."""

    call_index: int
    seq: int
    intact: bool


class CallFrames:
    """Builds one call's ACS messages; payloads are pre-encoded so a send costs a few concats."""

    def __init__(
        self,
        call_index: int,
        sample_rate: int,
        participant_raw_id: str,
        markers: Markers = "bytes",
    ) -> None:
        if frame_bytes(sample_rate) <= MARKER.size:
            raise ValueError(f"sample rate {sample_rate} leaves no room for the marker")
        self.call_index = call_index
        self.sample_rate = sample_rate
        self.markers = markers
        body = tone_pcm(sample_rate, frame_bytes(sample_rate) - MARKER.size)
        self.body_b64 = base64.b64encode(body)
        self._head = (
            b'{"kind":"AudioData","audioData":{"participantRawID":'
            + json.dumps(participant_raw_id).encode()
            + b',"timestamp":"'
        )
        self._tail = self.body_b64 + b'","silent":false}}'
        # Audio markers: the whole frame is audio (bench.audio_markers), pre-encoded per frame.
        self._marked_b64: list[bytes] = []
        if markers == "audio":
            self._marked_b64 = marked_frames_b64(
                call_index, sample_rate, frame_bytes(sample_rate) // 2
            )
        self._clock = _IsoClock()

    def audio_metadata(self, subscription_id: str) -> bytes:
        """The AudioMetadata message ACS sends first on the socket."""
        return json.dumps(
            {
                "kind": "AudioMetadata",
                "audioMetadata": {
                    "subscriptionId": subscription_id,
                    "encoding": "PCM",
                    "sampleRate": self.sample_rate,
                    "channels": 1,
                    "length": frame_bytes(self.sample_rate),
                },
            }
        ).encode()

    def audio_data(self, seq: int, wall_time: float) -> bytes:
        """The AudioData message for frame `seq`, timestamped `wall_time` (epoch seconds)."""
        if self._marked_b64:
            body = self._marked_b64[seq % len(self._marked_b64)]
            return b"".join(
                (self._head, self._clock.iso(wall_time), b'","data":"', body, _UNMARKED_TAIL)
            )
        marker = base64.b64encode(MARKER.pack(MAGIC, self.call_index, seq))
        return b"".join((self._head, self._clock.iso(wall_time), b'","data":"', marker, self._tail))


def parse_echo(message: bytes, body_b64: bytes) -> EchoedFrame | None:
    """The marker of an echoed AudioData message; None when it carries no marked audio."""
    found = _DATA_FIELD.search(message)
    if found is None:
        return None
    start = found.end()
    try:
        magic, call_index, seq = MARKER.unpack(
            base64.b64decode(message[start : start + MARKER_B64_LEN])
        )
    except (ValueError, struct.error):
        return None
    if magic != MAGIC:
        return None
    body_start = start + MARKER_B64_LEN
    body_end = body_start + len(body_b64)
    intact = message[body_start:body_end] == body_b64 and message[body_end : body_end + 1] == b'"'
    return EchoedFrame(call_index, seq, intact)


def audio_payload(message: bytes) -> bytes | None:
    """The PCM of an AudioData message; None when it carries none."""
    found = _DATA_FIELD.search(message)
    if found is None:
        return None
    end = message.find(b'"', found.end())
    try:
        return base64.b64decode(message[found.end() : end])
    except ValueError:
        return None


def is_audio_data(message: bytes) -> bool:
    """True for a message carrying audio data (whatever its content)."""
    return _DATA_FIELD.search(message) is not None


def is_stop_audio(message: bytes) -> bool:
    """True for an outbound StopAudio message."""
    return _STOP_AUDIO.search(message) is not None


class _IsoClock:
    """Formats epoch seconds as ACS does (`2024-11-15T19:16:12.925Z`), cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def iso(self, wall_time: float) -> bytes:
        millis = int(wall_time * 1000)
        second, ms = divmod(millis, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
        return self._prefix + b"%03dZ" % ms
