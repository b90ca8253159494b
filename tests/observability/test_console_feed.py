from __future__ import annotations

import json
from typing import Any

import pytest

from app.calls.models import CallRecord, ConnectionState
from app.observability.console_feed import (
    AudioLevel,
    CallRemoved,
    EventHub,
    SubscriptionClosed,
    snapshot_message,
)


def record(call_id: str = "call-1", **fields: Any) -> CallRecord:
    return CallRecord(call_connection_id=call_id, caller="+14255550123").model_copy(update=fields)


async def test_every_subscriber_gets_every_message() -> None:
    hub = EventHub()
    with hub.subscribe() as first, hub.subscribe() as second:
        hub.publish(record())
        hub.publish_level("call-1", 0.25)
        for subscription in (first, second):
            call, level = [json.loads(m) for m in await subscription.get(max_wait_s=1)]
            assert call["type"] == "call"
            assert call["call"]["call_connection_id"] == "call-1"
            assert level == {"type": "level", "call_connection_id": "call-1", "rms": 0.25}


async def test_a_slow_subscriber_loses_its_oldest_messages_first() -> None:
    hub = EventHub(queue_limit=3)
    with hub.subscribe() as slow:
        for i in range(5):
            hub.publish_level(f"call-{i}", 0.1)
        kept = [json.loads(m)["call_connection_id"] for m in await slow.get(max_wait_s=1)]
        assert kept == ["call-2", "call-3", "call-4"]
        assert slow.dropped == 2
        assert slow.take_dropped() == 2
        assert slow.take_dropped() == 0


async def test_a_slow_subscriber_does_not_hold_back_the_others() -> None:
    hub = EventHub(queue_limit=2)
    with hub.subscribe() as slow, hub.subscribe() as fast:
        hub.publish_level("call-1", 0.1)
        assert len(await fast.get(max_wait_s=1)) == 1
        hub.publish_level("call-2", 0.1)
        hub.publish_level("call-3", 0.1)
        assert len(await fast.get(max_wait_s=1)) == 2
        assert fast.dropped == 0
        assert slow.dropped == 1


async def test_leaving_the_block_unsubscribes() -> None:
    hub = EventHub()
    with hub.subscribe() as subscription:
        assert hub.subscribers == 1
    assert hub.subscribers == 0
    hub.publish(record())
    with pytest.raises(SubscriptionClosed):
        await subscription.get(max_wait_s=1)


async def test_get_returns_nothing_when_nothing_comes_in_time() -> None:
    hub = EventHub()
    with hub.subscribe() as subscription:
        assert await subscription.get(max_wait_s=0.01) == []


async def test_closing_the_hub_ends_iteration_after_pending_messages() -> None:
    hub = EventHub()
    with hub.subscribe() as subscription:
        hub.publish(CallRemoved("call-1"))
        hub.close()
        received = [json.loads(message) async for message in subscription]
    assert received == [{"type": "removed", "call_connection_id": "call-1"}]
    assert hub.subscribers == 0
    with hub.subscribe() as late:
        assert [m async for m in late] == []


def test_publishing_with_no_subscriber_is_harmless() -> None:
    hub = EventHub()
    hub.publish(record())
    hub.publish_level("call-1", 0.5)
    assert hub.subscribers == 0


def test_levels_are_clamped_to_zero_to_one() -> None:
    assert json.loads(AudioLevel("c", 1.7).encode())["rms"] == 1.0
    assert json.loads(AudioLevel("c", -0.2).encode())["rms"] == 0.0


def test_snapshot_lists_every_call_as_json() -> None:
    message = json.loads(
        snapshot_message([record("a"), record("b", connection_state=ConnectionState.CONNECTED)])
    )
    assert message["type"] == "snapshot"
    assert [c["call_connection_id"] for c in message["calls"]] == ["a", "b"]
    assert message["calls"][1]["connection_state"] == "connected"
