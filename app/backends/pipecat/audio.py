"""The bot's audio on its way to the call: paced like a phone line, one playback per turn.

The call's `MediaOutput` buffers up to MEDIA_OUTBOUND_BUFFER_MS, far more than a turn. Handing
Pipecat's chunks over as fast as they come would make Pipecat believe the bot had finished
speaking long before the caller heard it (its `BotStoppedSpeakingFrame`, its user-turn logic),
so chunks are handed over on a real-time schedule, `lead_ms` ahead of it. Each stretch of
continuous speech is one playback: what the caller heard of it is known, so an ending call
waits for the goodbye's last word, and an interruption starts the next turn afresh.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

from app.backends.base import MediaOutput

LEAD_MS = 120
HEARD_POLL_S = 0.02
MIN_SLEEP_S = 0.001  # less than this ahead of schedule is on schedule
HEARD_TIMEOUT_S = 30.0  # the longest a goodbye may keep a finished call up


class OutboundAudio:
    """Paces one call's bot audio into its `MediaOutput` (PCM16 mono at `rate`)."""

    def __init__(
        self,
        output: MediaOutput,
        rate: int,
        *,
        lead_ms: int = LEAD_MS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._output = output
        self._bytes_per_s = rate * 2
        self._lead_s = lead_ms / 1000.0
        self._clock = clock
        self._sleep = sleep
        self._ids = itertools.count(1)
        self._next_at: float | None = None  # when the audio handed over so far runs out
        self._playback: str | None = None
        self._played_bytes = 0
        self.turn = 0  # interruptions so far: audio paced before one is not played

    @property
    def playback_id(self) -> str | None:
        return self._playback

    async def pace(self, nbytes: int) -> None:
        """Wait until `nbytes` more audio is due at the call (`lead_ms` ahead of real time)."""
        now = self._clock()
        if self._next_at is None or now >= self._next_at:
            # The line has gone quiet: this is the start of a new stretch of speech.
            await self._end_playback()
            self._playback = f"pipecat-{next(self._ids)}"
            self._played_bytes = 0
            self._next_at = now
        wait = self._next_at - self._lead_s - now
        self._next_at += nbytes / self._bytes_per_s
        if wait > MIN_SLEEP_S:
            await self._sleep(wait)

    async def play(self, pcm: bytes) -> None:
        if self._playback is None:
            self._playback = f"pipecat-{next(self._ids)}"
        self._played_bytes += len(pcm)
        await self._output.play(pcm, playback_id=self._playback)

    def interrupt(self) -> None:
        """Barge-in: StopAudio ahead of anything queued; what was not heard is dropped."""
        self.turn += 1
        self._output.stop_audio()
        self._next_at = None
        self._playback = None
        self._played_bytes = 0

    def unheard_ms(self) -> float:
        if self._playback is None:
            return 0.0
        played_ms = self._played_bytes * 1000.0 / self._bytes_per_s
        return max(0.0, played_ms - self._output.heard_ms(self._playback))

    async def until_heard(self, timeout_s: float = HEARD_TIMEOUT_S) -> None:
        """Flush the last playback and wait until the caller has heard all of it."""
        await self._end_playback(keep=True)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    # The caller hears it on the pacer's clock: sleep as long as is left.
                    unheard_ms = self.unheard_ms()
                    if unheard_ms <= 1.0:
                        return
                    await asyncio.sleep(max(HEARD_POLL_S, unheard_ms / 1000.0))
        except TimeoutError:
            return

    async def _end_playback(self, *, keep: bool = False) -> None:
        if self._playback is not None and self._played_bytes:
            await self._output.end_of_playback(self._playback)
        if not keep:
            self._playback = None
