"""Each ended call's final record, POSTed once, signed, retried, and finished during a drain;
against a real receiver on 127.0.0.1 and the real SDK against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from app.settings import ConfigurationError, load_settings
from tests.conftest import AppFactory, LiveApp, call_state
from tests.webhooks.receiver import HANG, Receiver, readme_verifier, receiving

SECRET = "whsec-test"


def webhook(receiver: Receiver, **more: Any) -> dict[str, Any]:
    return {
        "call_end_webhook_url": receiver.url,
        "call_end_webhook_secret": SECRET,
        "call_end_webhook_retry_s": 0.05,
        "call_end_webhook_retry_for_s": 0,
        **more,
    }


async def short_call(live: LiveApp, emulator: AcsEmulator, seconds: float = 0.6) -> str:
    """A call whose caller talks, then hangs up after `seconds`; its id."""
    delivery = await emulator.place_incoming_call(
        live.webhook_url,
        script=StreamScript(audio=tone(16000, seconds)),
        hang_up_after_s=seconds,
    )
    call = await emulator.call_for_context(delivery.incoming_call_context)
    assert call is not None
    return call.call_connection_id


async def test_the_final_record_is_delivered_signed(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    verify = readme_verifier()
    async with receiving() as receiver, start_app(**webhook(receiver)) as live:
        call_id = await short_call(live, emulator)
        await receiver.wait_for(lambda r: len(r.deliveries) == 1)
        final = (await live.client.get(f"/api/calls/{call_id}")).json()
    delivery = receiver.deliveries[0]
    assert verify(SECRET, delivery.body, delivery.headers["X-ACS-Bridge-Signature"])
    assert not verify("another secret", delivery.body, delivery.headers["X-ACS-Bridge-Signature"])
    document = delivery.document
    assert document["event"] == "call.ended"
    assert document["delivery_id"] == delivery.headers["X-ACS-Bridge-Delivery"]
    call = document["call"]
    assert call == final  # as GET /api/calls/{id} returns it
    assert call["connection_state"] == "disconnected"
    assert call["agent"] == "default"
    assert call["ended_by"] == "caller"
    assert call["media"]["connected"] is False
    assert call["media"]["frames_in"] > 0  # the media session's final write is in


async def test_a_500_and_a_timeout_are_retried_with_the_same_delivery_id(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    verify = readme_verifier()
    settings = {"call_end_webhook_timeout_s": 0.3, "call_end_webhook_retry_for_s": 0}
    async with (
        receiving([500, 503, HANG, 500]) as receiver,
        start_app(**webhook(receiver, **settings)) as live,
    ):
        await short_call(live, emulator, 0.2)
        await receiver.wait_for(lambda r: len(r.accepted) == 1)
    assert [d.answered for d in receiver.deliveries] == [500, 503, HANG, 500, 200]
    ids = {d.headers["X-ACS-Bridge-Delivery"] for d in receiver.deliveries}
    assert len(ids) == 1
    for delivery in receiver.deliveries:
        assert verify(SECRET, delivery.body, delivery.headers["X-ACS-Bridge-Signature"])


async def test_a_receiver_that_never_accepts_is_given_up_on_counted(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with (
        receiving([500] * 10) as receiver,
        start_app(**webhook(receiver)) as live,
    ):
        await short_call(live, emulator, 0.2)
        await receiver.wait_for(lambda r: len(r.deliveries) == 5)
        for _ in range(100):
            metrics = (await live.client.get("/metrics")).text
            if 'acs_bridge_call_end_webhooks_total{outcome="failed"} 1.0' in metrics:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the undelivered record was not counted")
    assert len(receiver.deliveries) == 5  # MIN_ATTEMPTS with no time to retry for


async def test_two_instances_deliver_a_call_once(
    start_app: AppFactory, emulator: AcsEmulator, redis_url: str, redis_prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_key_prefix": redis_prefix}
    async with (
        receiving() as receiver,
        start_app(instance_id="a", **webhook(receiver, **shared)) as a,
        start_app(instance_id="b", **webhook(receiver, **shared)) as b,
    ):
        call_id = await short_call(a, emulator, 0.2)
        await receiver.wait_for(lambda r: len(r.deliveries) == 1)
        record = await a.services.store.get(call_id)
        assert record is not None
        # Both instances learn the call ended (as when each applied one of its changes).
        for live in (a, b):
            hook = live.services.call_end_webhook
            assert hook is not None
            hook.call_ended(record)
            await hook.drain(5)
    assert len(receiver.deliveries) == 1


async def test_a_pending_delivery_finishes_during_the_drain(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    settings = {"call_end_webhook_retry_s": 0.5, "shutdown_drain_s": 5}
    async with (
        receiving([500]) as receiver,
        start_app(**webhook(receiver, **settings)) as live,
    ):
        call_id = await short_call(live, emulator, 0.2)
        await call_state(live, call_id, connection_state="disconnected")
        await receiver.wait_for(lambda r: len(r.deliveries) == 1)
        # SIGTERM's drain: it returns only once the retry was delivered.
        await live.services.stopping.drain()
        assert [d.answered for d in receiver.deliveries] == [500, 200]


def test_a_webhook_without_a_secret_refuses_startup() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None, call_end_webhook_url="https://crm.example/calls")
    assert str(refused.value) == "CALL_END_WEBHOOK_URL needs CALL_END_WEBHOOK_SECRET to sign with"
