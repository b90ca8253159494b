"""Write-behind for call state: the media path hands over mutations and never waits or fails.

Each call with pending writes has one task that applies everything queued for it as a single
`CallStore.update`. While the store is unavailable the task backs off and keeps collecting, so
when Redis returns one compare-and-set brings the record up to date. A mutation submitted with
a `supersedes` tag replaces the pending one with the same tag (periodic progress snapshots:
only the latest matters); untagged mutations all apply, in order.

A submitter that keeps the stored record (`on_stored`: the media session, which rebuilds the
whole record from it if the store loses it) makes the call *watched*. While any call is
watched (its keeper's writes keep landing, within `watch_for_s` of each other), one probe per
writer reads one watched record every `probe_interval_s`; finding it
gone means the store lost its data (Redis restarted without persistence), and `resets` grows,
so the owners rewrite their records at once instead of at their next periodic write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.calls.backoff import Backoff
from app.calls.models import CallRecord
from app.calls.store import CallStore, Mutation, StoreUnavailable

log = logging.getLogger(__name__)

RETRY_BACKOFF = Backoff()
PROBE_INTERVAL_S = 0.5
WATCH_FOR_S = 10.0  # a few periodic media writes: a session handed over elsewhere ages out

OnStored = Callable[[CallRecord], None]
"""Told the record as stored by the write that included the mutation."""


@dataclass(frozen=True, slots=True)
class _Pending:
    tag: str | None
    mutate: Mutation
    on_stored: OnStored | None


@dataclass
class _Queue:
    """The mutations waiting for one call, oldest first, and the task applying them."""

    mutations: list[_Pending] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    in_flight: int = 0  # mutations of the update being tried
    dropped: int = 0


class StateWriter:
    """Applies call-state mutations in the background, retrying while the store is away."""

    def __init__(
        self,
        store: CallStore,
        *,
        backoff: Backoff = RETRY_BACKOFF,
        max_pending_per_call: int = 32,
        max_calls: int = 10_000,
        probe_interval_s: float = PROBE_INTERVAL_S,
        watch_for_s: float = WATCH_FOR_S,
    ) -> None:
        self._store = store
        self._backoff = backoff
        self._max_pending = max_pending_per_call
        self._max_calls = max_calls
        self._probe_interval_s = probe_interval_s
        self._watch_for_s = watch_for_s
        self._queues: dict[str, _Queue] = {}
        # Calls whose last stored write had a keeper, and when it landed; most recent last.
        self._watched: dict[str, float] = {}
        self._probe: asyncio.Task[None] | None = None
        self._resets = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Mutations not yet stored (including those of a write in flight)."""
        return sum(len(q.mutations) + q.in_flight for q in self._queues.values())

    @property
    def resets(self) -> int:
        """How often the probe found a watched record gone: the store lost its data."""
        return self._resets

    def submit(
        self,
        call_connection_id: str,
        mutate: Mutation,
        supersedes: str | None = None,
        on_stored: OnStored | None = None,
    ) -> None:
        """Queue `mutate` for the call; returns at once and never raises.

        `on_stored` is told the stored record once the write including `mutate` lands.
        """
        if self._closed:
            log.warning("state writer closed: dropped an update of call %s", call_connection_id)
            return
        queue = self._queues.get(call_connection_id)
        if queue is None:
            if len(self._queues) >= self._max_calls:
                log.warning("too many calls with unsaved state: dropped %s", call_connection_id)
                return
            queue = self._queues[call_connection_id] = _Queue()
        if supersedes is not None:
            queue.mutations = [p for p in queue.mutations if p.tag != supersedes]
        queue.mutations.append(_Pending(supersedes, mutate, on_stored))
        if len(queue.mutations) > self._max_pending:
            del queue.mutations[0]
            queue.dropped += 1
            if queue.dropped == 1 or queue.dropped % 100 == 0:
                log.warning(
                    "call %s: %d state updates dropped while the store is unavailable",
                    call_connection_id,
                    queue.dropped,
                )
        if queue.task is None:
            self._idle.clear()
            queue.task = asyncio.create_task(self._drain(call_connection_id, queue))

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every submitted mutation is stored; False if that took over `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, grace_s: float = 2.0) -> None:
        """Give pending writes `grace_s` to land (the last media states), then cancel the rest."""
        self._closed = True
        if not await self.flush(grace_s):
            log.warning("closing with %d call state updates unsaved", self.pending)
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        if self._probe is not None:
            tasks.append(self._probe)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queues.clear()
        self._watched.clear()
        self._idle.set()

    async def _drain(self, call_id: str, queue: _Queue) -> None:
        delays = self._backoff.delays()
        failures = 0
        try:
            while queue.mutations:
                batch, queue.mutations = queue.mutations, []
                queue.in_flight = len(batch)
                try:
                    stored = await self._store.update(call_id, _compose([p.mutate for p in batch]))
                except StoreUnavailable as exc:
                    queue.in_flight = 0
                    queue.mutations = _requeue(batch, queue.mutations, self._max_pending)
                    failures += 1
                    # One warning per outage and call; the retries themselves are routine.
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "call %s: state not saved yet, retrying: %s", call_id, exc)
                    await asyncio.sleep(next(delays))
                    continue
                except Exception:
                    # A mutation that raises is a bug; retrying it would fail forever.
                    log.exception("call %s: dropped %d state updates", call_id, len(batch))
                else:
                    self._stored(call_id, stored, batch)
                queue.in_flight = 0
                if failures:
                    log.info("call %s: state saved after %d retries", call_id, failures)
                    delays, failures = self._backoff.delays(), 0
        finally:
            if self._queues.get(call_id) is queue:
                del self._queues[call_id]
            if not self._queues:
                self._idle.set()

    def _stored(self, call_id: str, record: CallRecord | None, batch: list[_Pending]) -> None:
        keepers = [p.on_stored for p in batch if p.on_stored is not None]
        self._watched.pop(call_id, None)
        if record is None or not keepers:
            return
        for keep in keepers:
            keep(record)
        self._watched[call_id] = asyncio.get_running_loop().time()
        if self._probe is None and not self._closed:
            self._probe = asyncio.create_task(self._watch_for_resets())

    async def _watch_for_resets(self) -> None:
        """Read one watched record per interval; gone means the store lost its data."""
        loop = asyncio.get_running_loop()
        try:
            while self._watched:
                await asyncio.sleep(self._probe_interval_s)
                stale = loop.time() - self._watch_for_s
                for old in [c for c, at in self._watched.items() if at < stale]:
                    del self._watched[old]
                if not self._watched:
                    break
                call_id = next(reversed(self._watched))
                try:
                    record = await self._store.get(call_id)
                except StoreUnavailable:
                    continue
                if record is None and call_id in self._watched:
                    # Unwatched until its owner's rewrite lands, so one loss counts once.
                    del self._watched[call_id]
                    self._resets += 1
                    log.warning("the call store lost call %s: its owners rewrite it", call_id)
        finally:
            self._probe = None


def _compose(mutations: list[Mutation]) -> Mutation:
    """One mutation applying `mutations` in order (None from one of them: that one is a no-op)."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        record, changed = current, False
        for step in mutations:
            new = step(record)
            if new is not None:
                record, changed = new, True
        return record if changed else None

    return mutate


def _requeue(failed: list[_Pending], newer: list[_Pending], limit: int) -> list[_Pending]:
    """The failed batch back in front of what arrived meanwhile; newer tags still win."""
    newer_tags = {p.tag for p in newer if p.tag is not None}
    kept = [p for p in failed if p.tag is None or p.tag not in newer_tags]
    return (kept + newer)[-limit:]
