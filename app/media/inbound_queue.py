"""A bounded queue of inbound events that drops the oldest audio when the backend falls behind.

The socket reader must never wait for the backend: when the queue is full, the oldest audio
frame goes (counted), while control items (the backend's open, DTMF, transcripts) are kept.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from app.backends.base import AudioIn

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """FIFO of at most `limit` items; `put` never blocks."""

    __slots__ = ("_items", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        # Each item with when it arrived (None: not timed), for the inbound latency.
        self._items: deque[tuple[T, float | None]] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, arrived: float | None = None) -> bool:
        """Append `item`; True when an older frame was dropped to make room."""
        items = self._items
        dropped = False
        if len(items) >= self.limit:
            self._drop_oldest_audio()
            dropped = True
        items.append((item, arrived))
        return dropped

    def pop(self) -> T:
        """The oldest item (the queue must not be empty)."""
        return self._items.popleft()[0]

    def pop_timed(self) -> tuple[T, float | None]:
        """The oldest item and when it arrived (the queue must not be empty)."""
        return self._items.popleft()

    def _drop_oldest_audio(self) -> None:
        items = self._items
        for index, (item, _) in enumerate(items):
            if type(item) is AudioIn:
                del items[index]
                break
        else:
            items.popleft()  # nothing but control items: the oldest goes
        self.dropped += 1
