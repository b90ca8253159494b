"""The call store seam: where call records live (memory now, Redis for scale-out).

Every change goes through `update` with a pure function, so an implementation can make it
atomic (a lock in memory, compare-and-set in Redis) and no update is lost; the function may be
applied more than once (a lost compare-and-set is retried), so it must not have side effects.

When a shared store cannot be reached, `get`, `list`, `update`, `claim` and `ping` raise
`StoreUnavailable`, saying which store and why (`store unreachable: host:port: reason`; the
HTTP layer answers 503 with it); `release` and `close` never raise.
Writes that must not wait on the store (the media path) go through `StateWriter`, which
buffers and retries them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.calls.models import CallRecord


class StoreUnavailable(Exception):
    """The store cannot be reached or answered too slowly; retrying later may succeed."""


Mutation = Callable[[CallRecord | None], CallRecord | None]
"""Given the current record (None when absent), return the new one (None: leave as is)."""


class CallStore(Protocol):
    """Async storage of call records and one-shot claims."""

    async def get(self, call_connection_id: str) -> CallRecord | None:
        """The record of one call, or None."""
        ...

    async def list(self) -> list[CallRecord]:
        """All known calls, newest first."""
        ...

    async def update(self, call_connection_id: str, mutate: Mutation) -> CallRecord | None:
        """Apply `mutate` atomically to the call's record and return the stored result."""
        ...

    async def claim(self, key: str, ttl_s: float) -> bool:
        """Claim `key` once: True for the first caller until the claim expires or is released."""
        ...

    async def release(self, key: str) -> None:
        """Give a claim back (the work it guarded failed and may be retried)."""
        ...

    async def ping(self) -> bool:
        """True when the store answers (readiness); raises StoreUnavailable saying why not."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
