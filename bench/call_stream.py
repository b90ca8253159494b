"""One simulated call's media socket: what it sent and when, and the echoes it matched."""

from __future__ import annotations

import contextlib
import time
from array import array
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidState

from bench.acs_frames import (
    FRAME_MS,
    CallFrames,
    audio_payload,
    frame_bytes,
    is_audio_data,
    is_stop_audio,
    parse_echo,
)
from bench.audio_markers import GROUP_FRAMES, PulseDecoder, first_bump_offset
from bench.load_config import LoadConfig

FRAME_S = FRAME_MS / 1000
TAIL_FRAMES = 10


@dataclass
class WorkerResult:
    """Counts and raw samples over the measured window (sample arrays as bytes of 'd')."""

    calls_connected: int = 0
    connect_errors: list[str] = field(default_factory=list)
    closed_early: list[str] = field(default_factory=list)
    frames_sent: int = 0
    frames_echoed: int = 0
    messages_received: int = 0
    duplicates: int = 0
    misrouted: int = 0
    corrupt: int = 0
    unmarked: int = 0
    stop_audio: int = 0
    audio_out: int = 0  # unmarked AudioData received in the measured window
    latencies_ms: bytes = b""
    lateness_ms: bytes = b""
    first_audio_ms: bytes = b""  # per call: first frame sent -> first AudioData back
    # Marker times for bench.marker_latency, rows of 'd': sends (call, number, time, counted),
    # receipts (receiving call, code, key, time).
    mark_sends: bytes = b""
    mark_receipts: bytes = b""
    marks_garbled: int = 0


class CallStream:
    """One call: frames `0..total-1` are sent; `first_counted..window_end-1` are measured.

    The frames after the window (`TAIL_FRAMES`) push the window's last audio through whatever
    holds some back on the way (a resampler's filter, a 40 ms chunker) and are not counted."""

    def __init__(self, index: int, ws: ClientConnection, config: LoadConfig) -> None:
        self.index = index
        self.ws = ws
        self.frames = CallFrames(index, config.sample_rate, f"4:+1555{index:07d}", config.markers)
        self.decoder = PulseDecoder(config.sample_rate) if config.markers == "audio" else None
        self.receipts = array("d")  # (code, number, time) of the marker groups heard back
        self.first_counted = round(config.warmup_s / FRAME_S)
        self.window_end = self.first_counted + round(config.seconds / FRAME_S)
        self.total = self.window_end + TAIL_FRAMES
        self.sent_at = array("d", bytes(8 * self.total))
        self.echoed = bytearray(self.total)
        self.echoed_at = array("d", bytes(8 * self.total))
        self.latencies = array("d")
        self.lateness = array("d")
        self.closed_early: str | None = None
        self.counts = WorkerResult()
        self.window = (0.0, 0.0)  # monotonic start and end of the measured window
        self.first_audio_at: float | None = None

    def send_frame(self, seq: int, due: float, wall_time: float) -> None:
        """Write frame `seq` (due at monotonic `due`) and note how late it left.

        Written through the sans-I/O protocol rather than `await ws.send()`: the same framing
        and write, without the per-message async context and without waiting on flow
        control, so one slow socket never holds up every other call's schedule (ACS streams
        at real time whatever the receiver does).
        """
        if self.closed_early is not None:
            return
        message = self.frames.audio_data(seq, wall_time)
        now = time.monotonic()
        self.sent_at[seq] = now
        try:
            self.ws.protocol.send_text(message)
            self.ws.send_data()
        except (InvalidState, OSError) as exc:
            self.sent_at[seq] = 0.0
            self.closed_early = f"call {self.index}: closed while sending: {exc}"
            return
        if self.first_counted <= seq < self.window_end:
            self.lateness.append((now - due) * 1000.0)

    async def receive(self) -> None:
        """Match echoed frames until cancelled or the server closes the socket."""
        recv, monotonic = self.ws.recv, time.monotonic
        body_b64, index, counts = self.frames.body_b64, self.index, self.counts
        sent_at, echoed, latencies = self.sent_at, self.echoed, self.latencies
        first_counted, window_end, total = self.first_counted, self.window_end, self.total
        try:
            while True:
                message = await recv(decode=False)
                now = monotonic()
                counts.messages_received += 1
                if isinstance(message, str):
                    message = message.encode()
                frame = parse_echo(message, body_b64)
                if frame is None:
                    if is_stop_audio(message):
                        counts.stop_audio += 1
                    else:
                        counts.unmarked += 1
                        if is_audio_data(message):
                            self._audio_out(now, message)
                    continue
                if frame.call_index != index or not 0 <= frame.seq < total:
                    counts.misrouted += 1
                    continue
                if not frame.intact:
                    counts.corrupt += 1
                seq = frame.seq
                if echoed[seq]:
                    counts.duplicates += 1
                    continue
                echoed[seq] = 1
                self.echoed_at[seq] = now
                if self.first_audio_at is None:
                    self.first_audio_at = now
                if first_counted <= seq < window_end:
                    latencies.append((now - sent_at[seq]) * 1000.0)
        except ConnectionClosed as exc:
            if self.closed_early is None:
                self.closed_early = f"call {self.index}: closed by server: {exc}"

    def _audio_out(self, now: float, message: bytes) -> None:
        """Audio the server sent of its own (not an echo of ours)."""
        if self.first_audio_at is None:
            self.first_audio_at = now
        start, end = self.window
        if start <= now < end:
            self.counts.audio_out += 1
        if self.decoder is not None and (pcm := audio_payload(message)):
            for code, number, (at,) in self.decoder.feed(pcm, (now,)):
                self.receipts.extend((code, number, at))

    async def close(self) -> None:
        """Close the socket (normal closure), giving the server a moment to answer."""
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            await self.ws.close()

    def merge_into(self, result: WorkerResult) -> None:
        """Add this call's counts and samples to the worker's result."""
        counts = self.counts
        measured = range(self.first_counted, self.window_end)
        result.frames_sent += sum(1 for seq in measured if self.sent_at[seq] > 0)
        result.frames_echoed += sum(self.echoed[self.first_counted : self.window_end])
        result.messages_received += counts.messages_received
        result.duplicates += counts.duplicates
        result.misrouted += counts.misrouted
        result.corrupt += counts.corrupt
        result.unmarked += counts.unmarked
        result.stop_audio += counts.stop_audio
        result.audio_out += counts.audio_out
        if self.first_audio_at is not None and self.sent_at[0] > 0:
            first = array("d", [(self.first_audio_at - self.sent_at[0]) * 1000.0])
            result.first_audio_ms += first.tobytes()
        sends, receipts = self._marks()
        result.mark_sends += sends.tobytes()
        result.mark_receipts += receipts.tobytes()
        result.marks_garbled += self.decoder.garbled if self.decoder is not None else 0
        result.latencies_ms += self.latencies.tobytes()
        result.lateness_ms += self.lateness.tobytes()
        if self.closed_early is not None:
            result.closed_early.append(self.closed_early)

    def _marks(self) -> tuple[array[float], array[float]]:
        """Marker rows: sends (call, number, time, 1 if in the window else 0), receipts (call,
        code, key, time). Byte markers: every frame, numbered by seq. Audio markers: one group
        per two frames, numbered seq // 2, timed at its bump 0 (that much before the frame
        left). Sends outside the window are there to resolve what is seen, not counted."""
        sends, receipts = array("d"), array("d")
        index, sent_at = self.index, self.sent_at
        window = range(self.first_counted, self.window_end)
        if self.decoder is None:
            for seq in range(self.total):
                if sent_at[seq] > 0:
                    sends.extend((index, seq, sent_at[seq], seq in window))
            for seq in range(self.total):
                if self.echoed[seq]:
                    receipts.extend((index, index, seq, self.echoed_at[seq]))
            return sends, receipts
        rate = self.frames.sample_rate
        lead = (frame_bytes(rate) // 2 - 1 - first_bump_offset(rate)) / rate
        for seq in range(0, self.total, GROUP_FRAMES):
            if sent_at[seq] > 0:
                sends.extend((index, seq // GROUP_FRAMES, sent_at[seq] - lead, seq in window))
        heard = self.receipts
        for i in range(0, len(heard), 3):
            receipts.extend((index, heard[i], heard[i + 1], heard[i + 2]))
        return sends, receipts
