"""Two instances behind one URL, sharing state through a real Redis."""

from __future__ import annotations

import asyncio

from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from tests.calls.redis.conftest import RedisServer
from tests.conftest import AppFactory, LiveApp, StreamFactory, call_state, load_corpus


async def test_incoming_call_is_answered_once_across_instances(
    start_app: AppFactory, emulator: AcsEmulator, redis_url: str, redis_prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_key_prefix": redis_prefix}
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        delivery = await emulator.place_incoming_call(a.webhook_url)
        # Event Grid retries the same event at the other instance, twice at once.
        retries = await asyncio.gather(
            b.client.post("/api/incomingCall", json=[delivery.event]),
            b.client.post("/api/incomingCall", json=[delivery.event]),
        )
        assert all(r.status_code == 200 for r in retries)
        answers = [r for r in emulator.requests if r.path.endswith(":answer")]
        assert len(answers) == 1


async def test_callbacks_media_and_control_split_between_instances(
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
    }
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        delivery = await emulator.place_incoming_call(a.webhook_url)
        call = await emulator.call_for_context(delivery.incoming_call_context)
        assert call is not None
        call_id = call.call_connection_id
        # Callbacks went to instance a; instance b sees the same state.
        await call_state(b, call_id, connection_state="connected")

        # ACS's media socket lands on b; the state shows b holds it, seen from a.
        script = StreamScript(audio=tone(16000, 2.0))
        async with open_stream(b, call_connection_id=call_id, script=script) as stream:
            await stream.wait_for(lambda s: len(s.audio_received) >= 5)
            record = await _wait_owner(a, call_id, "b")
            media = record["media"]
            assert isinstance(media, dict)
            assert media["connected"] is True
            listed = (await a.client.get("/api/calls")).json()
            assert [
                c["media"]["instance_id"] for c in listed if c["call_connection_id"] == call_id
            ] == ["b"]

            # A REST call on a reaches the socket on b.
            stop = await a.client.post(f"/api/calls/{call_id}/audio/stop")
            assert stop.status_code == 200, stop.text
            assert stop.json()["instance_id"] == "b"
            await stream.wait_for(lambda s: any(r.kind == "stop" for r in s.received))

        # With no socket anywhere, the same action is an honest 409.
        for _ in range(100):
            response = await a.client.post(f"/api/calls/{call_id}/audio/stop")
            if response.status_code == 409:
                break
            await asyncio.sleep(0.05)
        assert response.json()["error"]["code"] == "no_media_socket"


async def test_callbacks_for_one_call_at_two_instances_lose_no_update(
    start_app: AppFactory, redis_url: str, redis_prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_key_prefix": redis_prefix}
    connected = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")
    started = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStarted.json")
    participants = load_corpus("callback_events/pysdk_e2e_media_ParticipantsUpdated.json")
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        await asyncio.gather(
            a.client.post("/api/callbacks", json=[connected]),
            b.client.post("/api/callbacks", json=[started]),
            a.client.post("/api/callbacks", json=[participants]),
        )
        record = (await b.client.get(f"/api/calls/{connected['data']['callConnectionId']}")).json()
        types = {e["type"] for e in record["recent_events"]}
        assert types == {"CallConnected", "MediaStreamingStarted", "ParticipantsUpdated"}
        assert record["connection_state"] == "connected"
        assert record["media_state"] == "active"


async def test_redis_outage_keeps_media_flowing_and_state_converges(
    start_app: AppFactory, open_stream: StreamFactory, redis_server: RedisServer, redis_prefix: str
) -> None:
    async with start_app(
        instance_id="a", redis_url=redis_server.url, redis_key_prefix=redis_prefix
    ) as a:
        script = StreamScript(audio=tone(16000, 1.0))
        async with open_stream(a, call_connection_id="outage-call", script=script) as stream:
            await stream.wait_for(lambda s: len(s.audio_received) >= 5)
            await redis_server.stop()
            before = len(stream.audio_received)
            await stream.wait_for(lambda s: len(s.audio_received) >= before + 50, timeout=5)
            assert not stream.closed
            ready = await a.client.get("/readyz")
            assert ready.status_code == 503
            assert (await a.client.get("/api/calls")).status_code == 503
            await redis_server.start()
            for _ in range(200):
                if (await a.client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            frames_seen = len(stream.audio_received)
        # After the socket closes, the final state lands in the restarted Redis.
        record: dict[str, object] = {}
        for _ in range(200):
            response = await a.client.get("/api/calls/outage-call")
            if response.status_code == 200:
                record = response.json()
                media = record["media"]
                assert isinstance(media, dict)
                if not media["connected"]:
                    break
            await asyncio.sleep(0.05)
        media = record["media"]
        assert isinstance(media, dict)
        assert media["connected"] is False
        assert media["frames_out"] >= frames_seen - 5


async def _wait_owner(live: LiveApp, call_id: str, instance: str) -> dict[str, object]:
    for _ in range(200):
        response = await live.client.get(f"/api/calls/{call_id}")
        if response.status_code == 200:
            record: dict[str, object] = response.json()
            media = record["media"]
            if isinstance(media, dict) and media.get("instance_id") == instance:
                return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"{instance} never held the media of {call_id}")
