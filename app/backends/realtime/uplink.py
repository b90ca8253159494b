"""Caller audio on its way to the model: batched into equal appends (pure).

ACS sends 20 ms frames. By default (REALTIME_APPEND_MS=20) each one is an append of its own,
on its way to the model as it arrives: a frame waits for nothing. Larger appends save a little
per-event overhead and add up to their length to every turn. Either way the audio stays
continuous: silent frames are sent too (as zeros when ACS leaves them empty), or the server's
VAD would see time jump and misjudge when the caller stopped talking.
"""

from __future__ import annotations

import pybase64

from app.backends.base import AudioIn

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_TAIL = '"}'


class AppendBatcher:
    """Cuts the caller's audio into appends of exactly `append_bytes`."""

    def __init__(self, append_bytes: int, frame_bytes: int) -> None:
        if append_bytes <= 0 or append_bytes % 2:
            raise ValueError("append_bytes must be a positive, even number of bytes")
        self.append_bytes = append_bytes
        self.frame_bytes = frame_bytes
        self.ignored_frames = 0
        self._buffer = bytearray()
        self._speaker: str | None = None
        self._speaker_known = False

    def feed(self, frame: AudioIn) -> list[bytes]:
        """Add one frame; returns the appends it completes (usually none or one)."""
        if not self._speaker_known:
            self._speaker, self._speaker_known = frame.participant_id, True
        elif frame.participant_id != self._speaker:
            # Unmixed audio: the model hears one voice, the first participant that spoke.
            self.ignored_frames += 1
            return []
        buffer = self._buffer
        pcm = self._pcm(frame)
        size = self.append_bytes
        if not buffer and len(pcm) == size:
            return [pcm]  # the usual case with 20 ms appends: the frame is the append
        buffer += pcm
        if len(buffer) < size:
            return []
        chunks = [
            bytes(buffer[start : start + size]) for start in range(0, len(buffer) - size + 1, size)
        ]
        del buffer[: len(chunks) * size]
        return chunks

    def _pcm(self, frame: AudioIn) -> bytes:
        # A silent frame may come without data: it still stands for a frame of time.
        return bytes(self.frame_bytes) if not frame.pcm and frame.silent else frame.pcm


def append_message(pcm: bytes) -> str:
    """The `input_audio_buffer.append` JSON for `pcm` (base64 needs no JSON escaping)."""
    return _APPEND_HEAD + pybase64.b64encode_as_string(pcm) + _APPEND_TAIL
