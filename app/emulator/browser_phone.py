"""The console's softphone as the caller of an emulated call: the browser's microphone is the
caller's voice, and what the service plays goes back to the browser's speaker.

Audio is converted between the browser's rate and the call's with the media path's own
streaming resamplers, both ways. Nothing here waits: the emulator's media stream takes a frame
each 20 ms tick (`frame`), the browser's audio is buffered as it arrives (`speak`), and what
goes to the browser is queued (`outgoing`), bounded, for the console socket's sender.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.emulator.live_caller import CallerFrame, Heard
from app.emulator.round_trip import RoundTrip
from app.media.resample import Resampler, resampler

MAX_MIC_BACKLOG_MS = 100  # more microphone audio than this waiting: the oldest goes (latency)
MAX_SPEAKER_QUEUE_MS = 2000  # a browser reading slower than real time loses the oldest audio


@dataclass(frozen=True, slots=True)
class ToBrowser:
    """One message for the browser: PCM16 at its rate (binary), or a control message (JSON)."""

    pcm: bytes | None = None
    control: dict[str, Any] | None = None


class BrowserPhone:
    """One browser's call: a `LiveCaller` for the emulator's media stream."""

    def __init__(self, browser_rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.browser_rate = browser_rate
        self.call_rate: int | None = None
        self.round_trip = RoundTrip()
        self.dropped_mic_ms = 0  # microphone audio dropped because it came faster than used
        self._clock = clock
        self._mic = bytearray()  # at the browser's rate, not yet converted
        self._ready = bytearray()  # at the call's rate
        self._tones = ""
        self._mic_resampler: Resampler | None = None
        self._speaker_resampler: Resampler | None = None
        self._outbox: deque[ToBrowser] = deque()
        self._queued_audio = 0  # bytes of audio in the outbox
        self._changed = asyncio.Event()
        self._streaming = False
        self._closed = False

    # --- from the browser --------------------------------------------------------------------
    def speak(self, pcm: bytes) -> None:
        """PCM16 mono at the browser's rate, from its microphone."""
        if self._closed:
            return
        self._mic += pcm[: len(pcm) - len(pcm) % 2]
        limit = self._bytes(self.browser_rate, MAX_MIC_BACKLOG_MS)
        if len(self._mic) > limit:
            excess = len(self._mic) - limit
            del self._mic[:excess]
            self.dropped_mic_ms += excess * 1000 // (2 * self.browser_rate)

    def press(self, tones: str) -> None:
        """Keypad tones (already checked: 0-9 * # A-D), sent with the next frame."""
        if not self._closed:
            self._tones += tones

    # --- LiveCaller: the emulator's media stream ----------------------------------------------
    def frame(self, sample_rate: int, frame_bytes: int) -> CallerFrame:
        """The next 20 ms of microphone audio at the call's rate (None while too little came)."""
        if not self._streaming:
            self._start_stream(sample_rate)
        if self._mic:
            converter = self._mic_resampler
            self._ready += converter.process(bytes(self._mic)) if converter else self._mic
            self._mic.clear()
            limit = max(self._bytes(sample_rate, MAX_MIC_BACKLOG_MS), frame_bytes)
            if len(self._ready) > limit:
                del self._ready[: len(self._ready) - limit]
        tones, self._tones = self._tones, ""
        if len(self._ready) < frame_bytes:
            return CallerFrame(None, tones)
        pcm = bytes(self._ready[:frame_bytes])
        del self._ready[:frame_bytes]
        self.round_trip.sent(pcm, self._clock())
        return CallerFrame(pcm, tones)

    def hear(self, heard: Heard) -> None:
        """The service's audio goes to the browser; a StopAudio empties what it still holds."""
        if self._closed:
            return
        if heard.kind == "stop":
            self._stop_audio()
            return
        self.round_trip.received(heard.pcm, self._clock())
        converter = self._speaker_resampler
        pcm = converter.process(heard.pcm) if converter else heard.pcm
        if pcm:
            self._queue_audio(pcm)

    def stream_stopped(self) -> None:
        """Media streaming stopped (or the call ended): the next stream starts afresh."""
        if self._streaming:
            self._streaming = False
            self._ready.clear()
            self.post({"type": "media", "state": "stopped"})

    # --- to the browser --------------------------------------------------------------------
    async def outgoing(self, max_wait_s: float | None = None) -> list[ToBrowser]:
        """Every message queued for the browser, waiting up to `max_wait_s` for one."""
        if not self._outbox and not self._closed:
            self._changed.clear()
            try:
                async with asyncio.timeout(max_wait_s):
                    await self._changed.wait()
            except TimeoutError:
                return []
        batch = list(self._outbox)
        self._outbox.clear()
        self._queued_audio = 0
        return batch

    def post(self, control: dict[str, Any]) -> None:
        """Queue a control message for the browser (the call's progress)."""
        if not self._closed:
            self._outbox.append(ToBrowser(control=control))
            self._changed.set()

    def close(self) -> None:
        """The browser is gone: take no more audio, keep nothing."""
        self._closed = True
        self._mic.clear()
        self._ready.clear()
        self._outbox.clear()
        self._changed.set()

    # --- helpers ------------------------------------------------------------------------------
    def _start_stream(self, sample_rate: int) -> None:
        if sample_rate != self.call_rate:
            self.call_rate = sample_rate
            self._mic_resampler = resampler(self.browser_rate, sample_rate)
            self._speaker_resampler = resampler(sample_rate, self.browser_rate)
        self._streaming = True
        self.post({"type": "media", "state": "started", "sample_rate": sample_rate})

    def _stop_audio(self) -> None:
        kept = [item for item in self._outbox if item.pcm is None]
        self._outbox.clear()
        self._outbox.extend(kept)
        self._queued_audio = 0
        if self._speaker_resampler is not None:
            self._speaker_resampler.reset()  # the audio it still holds must never play
        self.post({"type": "stop"})

    def _queue_audio(self, pcm: bytes) -> None:
        self._outbox.append(ToBrowser(pcm=pcm))
        self._queued_audio += len(pcm)
        limit = self._bytes(self.browser_rate, MAX_SPEAKER_QUEUE_MS)
        while self._queued_audio > limit:
            oldest = next(item for item in self._outbox if item.pcm is not None)
            self._outbox.remove(oldest)
            self._queued_audio -= len(oldest.pcm or b"")
        self._changed.set()

    @staticmethod
    def _bytes(rate: int, ms: int) -> int:
        return rate * ms // 1000 * 2
