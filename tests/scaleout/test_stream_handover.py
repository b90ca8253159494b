"""A re-established media stream that reaches another instance: that instance ends the parked
session where it was, and its new backend starts with the conversation so far."""

from __future__ import annotations

import asyncio

from app.backends.base import (
    BackendEvent,
    CallActions,
    CallContext,
    InboundEvent,
    MediaOutput,
)
from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from tests.conftest import AppFactory, StreamFactory, call_state

GREETING = "Hello, how can I help?"


class TalkingBackend:
    """Says one line when it opens; keeps what it was told of the call."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.history: tuple[tuple[str, str], ...] | None = None
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self.history = call.history
        if not call.history:
            output.report(BackendEvent("transcript", {"role": "agent", "text": GREETING}))
        self.opened.set()

    async def receive(self, event: InboundEvent) -> None:
        return None

    async def close(self) -> None:
        self.closed.set()


async def test_a_stream_back_on_another_instance_continues_the_conversation(
    start_app: AppFactory,
    emulator: AcsEmulator,
    open_stream: StreamFactory,
    redis_url: str,
    redis_prefix: str,
) -> None:
    shared = {
        "redis_url": redis_url,
        "redis_key_prefix": redis_prefix,
        "media_start_on_answer": False,
        "media_resume_window_s": 30,
    }
    first, second = TalkingBackend(), TalkingBackend()
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        a.services.backend_factory = lambda settings: first
        b.services.backend_factory = lambda settings: second
        delivery = await emulator.place_incoming_call(a.webhook_url)
        call = await emulator.call_for_context(delivery.incoming_call_context)
        assert call is not None
        call_id = call.call_connection_id
        await call_state(a, call_id, connection_state="connected")
        started = await a.client.post(f"/api/calls/{call_id}/media/start")
        assert started.status_code == 202
        await call_state(a, call_id, media_state="active")
        script = StreamScript(audio=tone(16000, 5.0))
        async with open_stream(a, call_connection_id=call_id, script=script) as old:
            await asyncio.wait_for(first.opened.wait(), 10)
            await old.wait_for(lambda s: s.frames_sent >= 10)
            old.drop()  # a reset: the session on a parks, the conversation goes to Redis
            await asyncio.sleep(0.3)
            assert not first.closed.is_set()
        async with open_stream(b, call_connection_id=call_id, script=script) as new:
            await asyncio.wait_for(second.opened.wait(), 10)
            await asyncio.wait_for(first.closed.wait(), 5)  # a ended its parked session
            await new.wait_for(lambda s: s.frames_sent >= 5)
            record = await call_state(a, call_id)
    assert second.history == (("agent", GREETING),)
    media = record["media"]
    assert isinstance(media, dict)
    assert media["instance_id"] == "b"
