"""Per-response, per-item audio accounting for barge-in (pure: the backend does the I/O).

The model generates audio faster than real time, so when the caller starts talking most of
what it generated has not been heard. Barge-in therefore (1) stops the call's queued audio,
(2) cancels the response if one is still in flight, (3) tells the model how much of the item
the caller actually heard (`conversation.item.truncate`), clamped to the audio generated for
it, since the service rejects a truncate past that point, and skipped at 0, since it rejects
one for an item with no audio, and (4) drops the interrupted response's late deltas.

An item whose audio is complete (`response.output_audio.done`, or at the latest its response's
`response.done`) is ended once (`audio_done`, `response_done`): the backend then has the output
flush what it still holds of it, so the item plays, and counts as heard, to its last frame.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_BYTES_PER_MS = 48  # 24 kHz, 16-bit mono: the OpenAI models' rate
MAX_TRACKED = 32


@dataclass(slots=True)
class ItemAudio:
    """The audio generated for one output item."""

    item_id: str
    response_id: str
    generated_bytes: int = 0
    truncated: bool = False
    ended: bool = False  # its playback was told it is complete
    bytes_per_ms: int = DEFAULT_BYTES_PER_MS

    @property
    def generated_ms(self) -> int:
        return self.generated_bytes // self.bytes_per_ms


@dataclass(frozen=True, slots=True)
class Truncation:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class Interruption:
    """What a barge-in must do: cancel `response_id` (if in flight), truncate an item (if any)."""

    response_id: str | None
    truncation: Truncation | None
    # The item cut short and what fraction of its generated audio the caller heard (0.0: none).
    cut: tuple[str, float] | None = None


class PlaybackLedger:
    """Which response is in flight and how much audio each of its items produced."""

    def __init__(self, bytes_per_ms: int = DEFAULT_BYTES_PER_MS) -> None:
        self.bytes_per_ms = bytes_per_ms
        self.active_response: str | None = None
        self._items: OrderedDict[str, ItemAudio] = OrderedDict()
        self._last: ItemAudio | None = None
        self._dropped: deque[str] = deque(maxlen=MAX_TRACKED)

    def reset(self) -> None:
        """A new session: nothing is in flight and old ids mean nothing to it."""
        self.active_response = None
        self._items.clear()
        self._last = None
        self._dropped.clear()

    def response_created(self, response_id: str) -> None:
        if response_id not in self._dropped:
            self.active_response = response_id

    def response_done(self, response_id: str) -> list[str]:
        """The response is over: the ids of its items whose playback is still to be ended."""
        if self.active_response == response_id:
            self.active_response = None
        if response_id in self._dropped:
            return []
        return [
            item.item_id
            for item in self._items.values()
            if item.response_id == response_id and self._end(item)
        ]

    def audio_done(self, item_id: str) -> bool:
        """The item's audio is complete: True when its playback is to be ended now."""
        item = self._items.get(item_id)
        return item is not None and item.response_id not in self._dropped and self._end(item)

    def accept(self, response_id: str, item_id: str, nbytes: int) -> bool:
        """Account for an audio delta; False means drop it (its response was interrupted)."""
        if response_id in self._dropped:
            return False
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = ItemAudio(
                item_id, response_id, bytes_per_ms=self.bytes_per_ms
            )
            while len(self._items) > MAX_TRACKED:
                self._items.popitem(last=False)
        elif item.truncated:
            return False
        if self.active_response is None:
            # A delta whose response.created we missed still marks the response as in flight.
            self.active_response = response_id
        item.generated_bytes += nbytes
        self._last = item
        return True

    def was_truncated(self, item_id: str) -> bool:
        item = self._items.get(item_id)
        return item is not None and item.truncated

    def generated_ms(self, item_id: str) -> int:
        item = self._items.get(item_id)
        return 0 if item is None else item.generated_ms

    def is_speaking(self, heard_ms: Callable[[str], float]) -> bool:
        """True while a response is in flight or its audio is still playing to the caller."""
        if self.active_response is not None:
            return True
        last = self._last
        return (
            last is not None and not last.truncated and heard_ms(last.item_id) < last.generated_ms
        )

    def unheard_ms(self, heard_ms: Callable[[str], float]) -> float:
        """Milliseconds of the latest item's audio the caller has yet to hear."""
        last = self._last
        if last is None or last.truncated:
            return 0.0
        return max(0.0, last.generated_ms - heard_ms(last.item_id))

    def interrupt(self, heard_ms: Callable[[str], float]) -> Interruption | None:
        """The caller started talking: what to cancel and truncate (None: the model is silent)."""
        if not self.is_speaking(heard_ms):
            return None
        response_id = self.active_response
        if response_id is not None:
            self._dropped.append(response_id)
            self.active_response = None
        truncation = None
        cut = None
        last = self._last
        if last is not None and not last.truncated:
            end_ms = min(int(heard_ms(last.item_id)), last.generated_ms)
            # An earlier item the caller heard in full needs no truncate.
            if last.response_id == response_id or end_ms < last.generated_ms:
                last.truncated = True
                cut = (last.item_id, end_ms / last.generated_ms if last.generated_ms else 0.0)
                if end_ms > 0:
                    truncation = Truncation(last.item_id, end_ms)
        return Interruption(response_id, truncation, cut)

    @staticmethod
    def _end(item: ItemAudio) -> bool:
        """Mark `item` ended; False when it already was, or was cut short (nothing to flush)."""
        if item.ended or item.truncated:
            return False
        item.ended = True
        return True
