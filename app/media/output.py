"""The backend's view of the call's outbound side (the `MediaOutput` protocol)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from app.backends.base import BackendEvent
from app.media.pacing import OutboundPacer
from app.media.resample import Resampler


class SessionOutput:
    """Resamples the backend's audio to the call's rate and hands it to the pacer."""

    def __init__(
        self,
        pacer: OutboundPacer,
        converter: Resampler | None,
        *,
        enabled: bool,
        on_event: Callable[[BackendEvent], None],
        on_end: Callable[[str], None],
    ) -> None:
        self._pacer = pacer
        self._converter = converter
        self._enabled = enabled
        self._on_event = on_event
        self._on_end = on_end

    def play(self, pcm: bytes, *, playback_id: str | None = None) -> Coroutine[Any, Any, None]:
        """`MediaOutput.play`: the pacer's own coroutine, not one wrapped around it (per frame)."""
        if not self._enabled:
            return _nothing()  # the stream is not bidirectional: ACS would reject outbound audio
        if self._converter is not None:
            pcm = self._converter.process(pcm)
        return self._pacer.play(pcm, playback_id)

    async def end_of_playback(self, playback_id: str | None = None) -> None:
        """`MediaOutput.end_of_playback`: flush the filter's tail into the playback, then pad
        its last partial frame, so the playback is played, and counted, to its end."""
        if not self._enabled:
            return
        if self._converter is not None:
            tail = self._converter.process(b"", last=True)
            if tail:
                await self._pacer.play(tail, playback_id)
        self._pacer.flush()

    def stop_audio(self) -> None:
        if self._enabled:
            self._pacer.stop_audio()
            if self._converter is not None:
                # The filter holds a few ms of the interrupted audio: drop them too.
                self._converter.reset()

    def heard_ms(self, playback_id: str) -> float:
        return self._pacer.heard_ms(playback_id)

    def report(self, event: BackendEvent) -> None:
        self._on_event(event)

    def end(self, reason: str) -> None:
        self._on_end(reason)

    @property
    def queued_frames(self) -> int:
        return self._pacer.queued_frames


async def _nothing() -> None:
    return None
