"""Exponential backoff with jitter, for everything that retries a store that went away."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that double from `initial_s` up to `max_s`, each drawn from its upper half.

    The jitter keeps many calls (and instances) that lost Redis at the same moment from
    retrying in lockstep when it returns.
    """

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or self.factor < 1:
            raise ValueError("backoff needs 0 < initial_s <= max_s and factor >= 1")

    def delays(self) -> Iterator[float]:
        """An endless series of delays; start a new one after each success."""
        delay = self.initial_s
        while True:
            yield random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not a secret
            delay = min(delay * self.factor, self.max_s)
