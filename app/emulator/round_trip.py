"""The round trip of a call's audio: from a frame leaving the caller to the same frame coming
back (the echo backend), matched by content rather than by count, so it stays right when a
backend plays nothing for a while or drops a frame."""

from __future__ import annotations

from collections import deque

KEPT_FRAMES = 100  # 2 s of 20 ms frames: an echo later than that is no round trip to show
KEPT_SAMPLES = 50  # the round trip shown is the median of the last second of echoes


class RoundTrip:
    """Sent frames, then matched against what comes back; `ms` is the median round trip."""

    def __init__(self) -> None:
        self._sent: deque[tuple[bytes, float]] = deque(maxlen=KEPT_FRAMES)
        self._samples: deque[float] = deque(maxlen=KEPT_SAMPLES)

    def sent(self, pcm: bytes, at: float) -> None:
        """A frame went out at monotonic time `at` (silence is not kept: it all looks alike)."""
        if any(pcm):
            self._sent.append((pcm, at))

    def received(self, pcm: bytes, at: float) -> None:
        """A frame came back; the oldest sent frame equal to it is its origin."""
        # Echoes come back in order: frames sent before the match will never come back.
        for index, (sent, sent_at) in enumerate(self._sent):
            if sent == pcm:
                for _ in range(index + 1):
                    self._sent.popleft()
                self._samples.append((at - sent_at) * 1000.0)
                return

    @property
    def ms(self) -> float | None:
        """The median of the recent round trips in milliseconds; None before any."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[len(ordered) // 2]
