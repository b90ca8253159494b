"""Outbound pacing: backend audio of any size out as exact frames, at real time plus a lead.

Frames are scheduled on an absolute monotonic timeline (`t0 + n * frame`), so sleeps never
accumulate drift, and sent `lead` ahead of it, so ACS always has a little audio queued while a
`StopAudio` still cuts playback almost at once. `stop_audio` drops every queued frame and the
StopAudio goes out before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.media.protocol import STOP_AUDIO, audio_message

MAX_TRACKED_PLAYBACKS = 64


@dataclass(slots=True)
class Playback:
    """How much of one playback (e.g. one model response item) has gone out, and when."""

    frames_sent: int = 0
    first_play_at: float | None = None  # monotonic time its first frame starts playing

    def heard_ms(self, now: float, frame_ms: int) -> float:
        if self.first_play_at is None:
            return 0.0
        played = (now - self.first_play_at) * 1000.0
        return max(0.0, min(played, self.frames_sent * frame_ms))


class OutboundPacer:
    """Queue, re-chunk and pace one call's outbound audio."""

    def __init__(
        self,
        frame_bytes: int,
        *,
        frame_ms: int = 20,
        lead_ms: int = 80,
        buffer_ms: int = 30_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.frame_bytes = frame_bytes
        self.frame_ms = frame_ms
        self._frame_s = frame_ms / 1000.0
        self._lead_s = lead_ms / 1000.0
        self._max_frames = max(1, buffer_ms // frame_ms)
        self._clock = clock
        self._frames: deque[tuple[bytes, Playback]] = deque()
        self._partial = b""
        self._partial_playback: Playback | None = None
        self._playbacks: OrderedDict[str, Playback] = OrderedDict()
        self._anonymous = Playback()
        self._stop_pending = False
        self._next_play_at: float | None = None
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.frames_sent = 0
        self.stops_sent = 0

    @property
    def queued_frames(self) -> int:
        return len(self._frames)

    async def play(self, pcm: bytes, playback_id: str | None = None) -> None:
        """Queue audio; waits while the buffer is full."""
        playback = self._playback(playback_id)
        if self._partial and self._partial_playback is not playback:
            self.flush()
        data = self._partial + pcm if self._partial else pcm
        size = self.frame_bytes
        whole = len(data) - len(data) % size
        for start in range(0, whole, size):
            while len(self._frames) >= self._max_frames:
                self._space.clear()
                await self._space.wait()
            self._frames.append((data[start : start + size], playback))
        self._partial = data[whole:]
        self._partial_playback = playback if self._partial else None
        self._wakeup.set()

    def flush(self) -> None:
        """Pad a trailing partial frame with silence and queue it (a playback has ended)."""
        if self._partial and self._partial_playback is not None:
            frame = self._partial + bytes(self.frame_bytes - len(self._partial))
            self._frames.append((frame, self._partial_playback))
            self._wakeup.set()
        self._partial = b""
        self._partial_playback = None

    def stop_audio(self) -> None:
        """Drop queued audio and send StopAudio next."""
        self._frames.clear()
        self._partial = b""
        self._partial_playback = None
        self._stop_pending = True
        self._next_play_at = None
        self._space.set()
        self._wakeup.set()

    def heard_ms(self, playback_id: str) -> float:
        playback = self._playbacks.get(playback_id)
        return 0.0 if playback is None else playback.heard_ms(self._clock(), self.frame_ms)

    async def run(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Send until cancelled: StopAudio first when asked, then frames on schedule."""
        while True:
            if self._stop_pending:
                self._stop_pending = False
                await send(STOP_AUDIO)
                self.stops_sent += 1
                continue
            if not self._frames:
                await self._idle()
                continue
            now = self._clock()
            if self._next_play_at is None or self._next_play_at < now:
                # Idle or fallen behind: playback (re)starts now rather than bursting to catch up.
                self._next_play_at = now
            send_at = self._next_play_at - self._lead_s
            if send_at > now:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), send_at - now)
                continue  # re-check: a StopAudio may have arrived meanwhile
            frame, playback = self._frames.popleft()
            if len(self._frames) < self._max_frames:
                self._space.set()
            if playback.first_play_at is None:
                playback.first_play_at = self._next_play_at
            playback.frames_sent += 1
            self._next_play_at += self._frame_s
            await send(audio_message(frame))
            self.frames_sent += 1

    async def _idle(self) -> None:
        self._wakeup.clear()
        if not self._partial:
            await self._wakeup.wait()
            return
        # A remainder shorter than a frame: wait briefly for more before padding it out.
        try:
            await asyncio.wait_for(self._wakeup.wait(), 2 * self._frame_s)
        except TimeoutError:
            self.flush()

    def _playback(self, playback_id: str | None) -> Playback:
        if playback_id is None:
            return self._anonymous
        playback = self._playbacks.get(playback_id)
        if playback is None:
            playback = self._playbacks[playback_id] = Playback()
            while len(self._playbacks) > MAX_TRACKED_PLAYBACKS:
                self._playbacks.popitem(last=False)
        return playback
