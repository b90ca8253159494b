from __future__ import annotations

import json
from typing import Any

from app.calls.models import CallRecord
from app.observability.console_feed import EventHub
from app.observability.sse import console_stream


def data(chunk: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :]) for line in chunk.split("\n") if line.startswith("data: ")
    ]


def snapshot_of(*records: CallRecord) -> Any:
    async def snapshot() -> list[CallRecord]:
        return list(records)

    return snapshot


async def test_the_stream_starts_with_a_snapshot_and_a_retry_hint() -> None:
    hub = EventHub()
    stream = console_stream(hub, snapshot_of(CallRecord(call_connection_id="a")))
    first = await anext(stream)
    assert first.startswith("retry: ")
    (snapshot,) = data(first)
    assert snapshot["type"] == "snapshot"
    assert [c["call_connection_id"] for c in snapshot["calls"]] == ["a"]
    assert hub.subscribers == 1
    await stream.aclose()
    assert hub.subscribers == 0


async def test_published_messages_follow_in_order() -> None:
    hub = EventHub()
    stream = console_stream(hub, snapshot_of())
    await anext(stream)
    hub.publish(CallRecord(call_connection_id="a"))
    hub.publish_level("a", 0.5)
    messages = data(await anext(stream))
    assert [m["type"] for m in messages] == ["call", "level"]
    await stream.aclose()


async def test_an_idle_stream_sends_a_heartbeat_comment() -> None:
    hub = EventHub()
    stream = console_stream(hub, snapshot_of(), heartbeat_s=0.01)
    await anext(stream)
    assert await anext(stream) == ": ping\n\n"
    await stream.aclose()


async def test_a_client_that_lost_messages_gets_a_fresh_snapshot() -> None:
    hub = EventHub(queue_limit=2)
    snapshot = snapshot_of(CallRecord(call_connection_id="a"))
    stream = console_stream(hub, snapshot, resync_interval_s=0)
    await anext(stream)
    for _ in range(5):
        hub.publish_level("a", 0.1)
    messages = data(await anext(stream))
    assert [m["type"] for m in messages] == ["level", "level", "snapshot"]
    assert messages[-1]["calls"][0]["call_connection_id"] == "a"
    await stream.aclose()


async def test_the_stream_ends_when_the_hub_closes() -> None:
    hub = EventHub()
    stream = console_stream(hub, snapshot_of())
    await anext(stream)
    hub.close()
    assert [chunk async for chunk in stream] == []
