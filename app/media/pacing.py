"""Outbound pacing: backend audio of any size out as exact frames, at real time plus a lead.

Frames are scheduled on an absolute monotonic timeline (`t0 + n * frame`), so sleeps never
accumulate drift, and sent `lead` (to `lead` plus a frame) ahead of it, so ACS always has a
little audio queued while a `StopAudio` still cuts playback almost at once. `stop_audio` drops
every queued frame and the StopAudio goes out before anything else.

The pacer hands out PCM frames and the `STOP` marker; `OutboundSocket` (`app.media.socket`)
turns them into ACS JSON. While `run` serves a socket, a frame that is already due goes out from
the code that queued it (`eager.step`), and the pacer's task only wakes for audio ahead of
schedule, a partial frame or a send that had to wait: one task switch less per frame.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from app.media import eager
from app.media.protocol import STOP, OutboundItem
from app.media.waits import wait_for_event

Send = Callable[[OutboundItem], Awaitable[None]]

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
        on_first_frame: Callable[[float, float], None] | None = None,
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
        self._partial_at = 0.0  # when audio was last added to the partial frame
        self._flush_check: asyncio.TimerHandle | None = None
        self._timed_wait = False  # the task sleeps until the next queued frame is due
        self._playbacks: OrderedDict[str, Playback] = OrderedDict()
        self._anonymous = Playback()
        self._stop_pending = False
        self._next_play_at: float | None = None
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        # Set while `run` serves a socket: frames that are due may then be sent directly.
        self._send: Send | None = None
        # A direct send that had to wait: the task finishes it before sending anything else.
        self._in_flight: Coroutine[Any, Any, None] | None = None
        self._task_sending = False
        self._failure: Exception | None = None
        self.frames_sent = 0
        self.stops_sent = 0
        # Audio that reached a silent output: when it came, and whose frame going out ends the
        # wait; `on_first_frame(came, sent)` measures the outbound latency.
        self._on_first_frame = on_first_frame
        self._burst: Playback | None = None
        self._burst_at = 0.0
        self._burst_pad_s = 0.0

    @property
    def queued_frames(self) -> int:
        return len(self._frames)

    async def play(self, pcm: bytes, playback_id: str | None = None) -> None:
        """Queue audio of any length; waits only while the buffer is full."""
        if (
            not self._partial
            and len(pcm) == self.frame_bytes
            and len(self._frames) < self._max_frames
        ):
            # The usual case, one whole frame that fits: no re-chunking.
            playback = self._anonymous if playback_id is None else self._playback(playback_id)
            if self._burst is None and self._on_first_frame is not None and self._silent():
                self._start_burst(playback, 0)
            self._frames.append((pcm, playback))
            self._pump()
            return
        while not self._has_room(len(pcm), playback_id):
            # Queue what fits, then wait for the pacer to make room for the rest.
            room = self._room_bytes(self._playback(playback_id))
            if room:
                self._queue(pcm[:room], playback_id)
                pcm = pcm[room:]
            self._space.clear()
            await self._space.wait()
        self._queue(pcm, playback_id)

    def _has_room(self, nbytes: int, playback_id: str | None = None) -> bool:
        """Whether `nbytes` more audio of `playback_id` fits the buffer now."""
        same = self._partial_playback is self._playback(playback_id)
        pending = len(self._partial) if same else 0
        padded = 1 if self._partial and not same else 0
        frames = len(self._frames) + padded + (pending + nbytes) // self.frame_bytes
        return frames <= self._max_frames

    def _room_bytes(self, playback: Playback) -> int:
        """Bytes of `playback` that fill the buffer exactly (a partial frame counts toward it)."""
        free = self._max_frames - len(self._frames)
        if self._partial and self._partial_playback is playback:
            return max(0, free * self.frame_bytes - len(self._partial))
        if self._partial:
            free -= 1  # the other playback's remainder is padded into a frame first
        return max(0, free * self.frame_bytes)

    def _queue(self, pcm: bytes, playback_id: str | None = None) -> None:
        playback = self._playback(playback_id)
        if pcm and self._silent():
            # Audio into a silent output goes now: less than a frame of it (a resampler's
            # first output is short) is padded in front with silence, which nobody can tell
            # from the silence before, instead of waiting for more.
            pad = self.frame_bytes - len(pcm) if len(pcm) < self.frame_bytes else 0
            if pad:
                pcm = bytes(pad) + pcm
            if self._burst is None and self._on_first_frame is not None:
                self._start_burst(playback, pad)
        if self._partial and self._partial_playback is not playback:
            self.flush()
        data = self._partial + pcm if self._partial else pcm
        size = self.frame_bytes
        whole = len(data) - len(data) % size
        for start in range(0, whole, size):
            self._frames.append((data[start : start + size], playback))
        self._partial = data[whole:]
        self._partial_playback = playback if self._partial else None
        if self._partial:
            self._partial_at = self._clock()
            if self._flush_check is None:
                self._arm_flush_check(2 * self._frame_s)
        self._pump()

    def flush(self) -> None:
        """Pad a trailing partial frame with silence and queue it (a playback has ended)."""
        if self._partial and self._partial_playback is not None:
            frame = self._partial + bytes(self.frame_bytes - len(self._partial))
            self._frames.append((frame, self._partial_playback))
        self._partial = b""
        self._partial_playback = None
        self._pump()

    def stop_audio(self) -> None:
        """Drop queued audio and send StopAudio next."""
        self._frames.clear()
        self._partial = b""
        self._partial_playback = None
        self._next_play_at = None
        self._burst = None
        self._space.set()
        if self._send is not None and not self._busy():
            # Nothing is being sent: StopAudio goes out now, from here.
            self.stops_sent += 1
            self._send_direct(self._send, STOP)
            return
        self._stop_pending = True
        self._wakeup.set()

    def heard_ms(self, playback_id: str) -> float:
        playback = self._playbacks.get(playback_id)
        return 0.0 if playback is None else playback.heard_ms(self._clock(), self.frame_ms)

    async def run(self, send: Send) -> None:
        """Send until cancelled: StopAudio first when asked, then frames on schedule."""
        self._send = send
        try:
            while True:
                if self._in_flight is not None:
                    rest, self._in_flight = self._in_flight, None
                    self._task_sending = True
                    try:
                        await rest
                    finally:
                        self._task_sending = False
                    continue
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    raise failure
                if self._stop_pending:
                    self._stop_pending = False
                    self.stops_sent += 1
                    await self._send_from_task(send, STOP)
                    continue
                if not self._frames:
                    await self._idle()
                    continue
                now = self._clock()
                frame = self._take_due(now)
                if frame is None:
                    assert self._next_play_at is not None
                    # Re-check when woken: a StopAudio may have arrived meanwhile. More audio
                    # queued behind the frame waited for changes nothing: it does not wake us.
                    self._timed_wait = True
                    try:
                        await self._wait(self._next_play_at - self._lead_s - now)
                    finally:
                        self._timed_wait = False
                    continue
                await self._send_from_task(send, frame)
        finally:
            self._send = None
            if self._flush_check is not None:
                self._flush_check.cancel()
                self._flush_check = None
            if self._in_flight is not None:
                self._in_flight.close()
                self._in_flight = None

    def _take_due(self, now: float) -> bytes | None:
        """The next frame if it is due to be sent at `now` (None: not yet)."""
        next_play_at = self._next_play_at
        if next_play_at is None or next_play_at < now:
            # Idle or fallen behind: playback (re)starts now rather than bursting to catch up.
            next_play_at = now
        elif next_play_at - self._lead_s - self._frame_s > now:
            # Up to a frame early: the task sends frames in pairs when it wakes, and a frame
            # that arrives a little ahead goes with its producer, not with a wake of the task.
            return None
        frame, playback = self._frames.popleft()
        if len(self._frames) < self._max_frames:
            self._space.set()
        if playback.first_play_at is None:
            playback.first_play_at = next_play_at
        playback.frames_sent += 1
        if playback is self._burst:
            self._burst = None
            on_first_frame = self._on_first_frame
            if on_first_frame is not None:
                on_first_frame(self._burst_at, now + self._burst_pad_s)
        self._next_play_at = next_play_at + self._frame_s
        self.frames_sent += 1
        return frame

    def _pump(self) -> None:
        """Send what is due from here when nothing else is sending; wake the task for the rest."""
        send = self._send
        if send is not None and not self._stop_pending and not self._busy():
            frames, clock = self._frames, self._clock
            while frames:
                frame = self._take_due(clock())
                if frame is None or not self._send_direct(send, frame):
                    break
        if (self._frames and not self._timed_wait) or self._stop_pending or self._busy():
            self._wakeup.set()

    def _busy(self) -> bool:
        return self._task_sending or self._in_flight is not None or self._failure is not None

    def _send_direct(self, send: Send, item: OutboundItem) -> bool:
        """Send `item` from here; False when it had to wait or failed (the task takes over)."""
        try:
            rest = eager.step(send(item))
        except Exception as exc:  # the socket is gone: the task reports it
            self._failure = exc
            self._wakeup.set()
            return False
        if rest is not None:
            self._in_flight = rest
            self._wakeup.set()
            return False
        return True

    async def _send_from_task(self, send: Send, item: OutboundItem) -> None:
        self._task_sending = True
        try:
            await send(item)
        finally:
            self._task_sending = False

    async def _idle(self) -> None:
        if self._partial:
            if self._partial_stale():
                self.flush()
                return
            if self._flush_check is None:
                self._arm_flush_check(self._partial_at + 2 * self._frame_s - self._clock())
        await self._wait(None)

    # A remainder shorter than a frame is padded out once no audio has come for two frames.
    # Resampled audio leaves one after every chunk: a timer callback, not the pacer's task,
    # watches it, and wakes the task only when it is due (a task switch per frame otherwise).
    def _arm_flush_check(self, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        self._flush_check = loop.call_later(max(delay_s, 0.0), self._check_partial)

    def _check_partial(self) -> None:
        self._flush_check = None
        if not self._partial:
            return
        if self._partial_stale():
            self._wakeup.set()
        else:
            self._arm_flush_check(self._partial_at + 2 * self._frame_s - self._clock())

    def _partial_stale(self) -> bool:
        return self._clock() - self._partial_at >= 2 * self._frame_s

    async def _wait(self, limit_s: float | None) -> bool:
        """Wait for a wakeup, at most `limit_s` seconds; True when the time ran out."""
        self._wakeup.clear()
        return await wait_for_event(self._wakeup, limit_s)

    def _silent(self) -> bool:
        """The caller hears nothing of this call's audio now: nothing queued, all that was sent
        has played. Audio that comes while earlier audio still plays waits its turn by design
        (pacing, not delay)."""
        if self._frames or self._partial:
            return False
        next_play_at = self._next_play_at
        return next_play_at is None or next_play_at <= self._clock()

    def _start_burst(self, playback: Playback, pad_bytes: int) -> None:
        """Time this audio to its first frame out; silence padded in front of it counts."""
        self._burst = playback
        self._burst_at = self._clock()
        # The padding plays first: the audio itself is heard that much after its frame starts.
        self._burst_pad_s = pad_bytes / self.frame_bytes * self._frame_s

    def _playback(self, playback_id: str | None) -> Playback:
        if playback_id is None:
            return self._anonymous
        playback = self._playbacks.get(playback_id)
        if playback is None:
            playback = self._playbacks[playback_id] = Playback()
            while len(self._playbacks) > MAX_TRACKED_PLAYBACKS:
                self._playbacks.popitem(last=False)
        return playback
