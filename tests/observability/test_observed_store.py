from __future__ import annotations

import json

from app.calls.memory_store import MemoryCallStore
from app.calls.models import CallRecord, ConnectionState, MediaState, utcnow
from app.calls.store import Mutation
from app.observability.console_feed import EventHub
from app.observability.metrics import Metrics
from app.observability.observed_store import ObservedCallStore, call_outcome


def observed() -> tuple[ObservedCallStore, EventHub, Metrics]:
    hub, metrics = EventHub(), Metrics()
    return ObservedCallStore(MemoryCallStore(), hub, metrics), hub, metrics


def new_call(call_id: str) -> Mutation:
    return lambda current: current or CallRecord(call_connection_id=call_id)


def set_state(state: ConnectionState, **fields: object) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord | None:
        assert current is not None
        return current.model_copy(update={"connection_state": state, **fields})

    return mutate


def gauge(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_each_change_is_published_to_the_console() -> None:
    store, hub, _ = observed()
    with hub.subscribe() as subscription:
        await store.update("call-1", new_call("call-1"))
        await store.update("call-1", set_state(ConnectionState.CONNECTED, connected_at=utcnow()))
        messages = [json.loads(m) for m in await subscription.get(max_wait_s=1)]
    assert [m["call"]["connection_state"] for m in messages] == ["connecting", "connected"]


async def test_a_mutation_that_changes_nothing_is_not_published() -> None:
    store, hub, _ = observed()
    await store.update("call-1", new_call("call-1"))
    with hub.subscribe() as subscription:
        assert await store.update("call-1", lambda current: None) is not None
        assert await subscription.get(max_wait_s=0.01) == []


async def test_a_call_counts_as_active_until_it_disconnects() -> None:
    store, _, metrics = observed()
    await store.update("call-1", new_call("call-1"))
    await store.update("call-1", set_state(ConnectionState.CONNECTED, connected_at=utcnow()))
    assert gauge(metrics, "acs_bridge_calls_active") == 1
    await store.update("call-1", set_state(ConnectionState.DISCONNECTED))
    await store.update("call-1", set_state(ConnectionState.DISCONNECTED))  # a late duplicate
    assert gauge(metrics, "acs_bridge_calls_active") == 0
    assert gauge(metrics, "acs_bridge_calls_ended_total", outcome="completed") == 1


async def test_a_call_that_never_connected_ends_as_failed() -> None:
    store, _, metrics = observed()
    await store.update("call-1", new_call("call-1"))
    await store.update("call-1", set_state(ConnectionState.DISCONNECTED))
    assert gauge(metrics, "acs_bridge_calls_ended_total", outcome="failed") == 1
    assert gauge(metrics, "acs_bridge_calls_active") == 0


async def test_reads_and_claims_go_to_the_inner_store() -> None:
    store, _, _ = observed()
    await store.update("call-1", new_call("call-1"))
    assert (await store.get("call-1")) is not None
    assert [r.call_connection_id for r in await store.list()] == ["call-1"]
    assert await store.claim("k", 10) is True
    assert await store.claim("k", 10) is False
    await store.release("k")
    assert await store.claim("k", 10) is True
    assert await store.ping() is True


def test_outcome_tells_media_failures_apart() -> None:
    connected = CallRecord(call_connection_id="c", connected_at=utcnow())
    assert call_outcome(connected) == "completed"
    assert call_outcome(connected.model_copy(update={"media_state": MediaState.FAILED})) == (
        "media_failed"
    )
    assert call_outcome(CallRecord(call_connection_id="c")) == "failed"
