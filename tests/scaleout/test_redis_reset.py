"""Redis restarts empty while b streams a call: b rewrites the whole record, nothing regresses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from tests.calls.redis.conftest import RedisServer
from tests.conftest import AppFactory, LiveApp, StreamFactory, call_state

POLL_S = 0.05
FULL_RECORD_WITHIN_S = 2.0


@dataclass(frozen=True, slots=True)
class Seen:
    """What one GET of the call answered, `at` seconds after Redis came back."""

    at: float
    status: int
    connection_state: str | None = None
    caller: str | None = None
    media_connected: bool | None = None
    instance_id: str | None = None
    frames_in: int | None = None


async def test_the_media_owner_rewrites_the_whole_record_after_redis_restarts_empty(
    start_app: AppFactory,
    emulator: AcsEmulator,
    open_stream: StreamFactory,
    redis_server: RedisServer,
    redis_prefix: str,
) -> None:
    shared = {
        "redis_url": redis_server.url,
        "redis_key_prefix": redis_prefix,
        "media_start_on_answer": False,
    }
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        delivery = await emulator.place_incoming_call(a.webhook_url)
        call = await emulator.call_for_context(delivery.incoming_call_context)
        assert call is not None
        call_id = call.call_connection_id
        before = await call_state(b, call_id, connection_state="connected")
        caller = before["caller"]
        assert isinstance(caller, str)

        script = StreamScript(audio=tone(16000, 2.0))
        async with open_stream(b, call_connection_id=call_id, script=script) as stream:
            await stream.wait_for(lambda s: len(s.audio_received) >= 5)
            await _wait_full(a, call_id, caller)

            await redis_server.stop()
            await redis_server.start()
            seen = await _poll_until_full(a, call_id, caller, timeout_s=8.0)
            assert not stream.closed

    full = [s for s in seen if _is_full(s, caller)]
    assert full, f"a never showed the whole record again: {_summary(seen)}"
    assert full[0].at <= FULL_RECORD_WITHIN_S, _summary(seen)
    regressions = [s for s in seen if s.status == 200 and not _is_full(s, caller)]
    assert regressions == [], _summary(seen)


async def _poll_until_full(
    live: LiveApp, call_id: str, caller: str, timeout_s: float
) -> list[Seen]:
    """Poll every 50 ms; keep going 1 s past the first full record, to catch a later regression."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen: list[Seen] = []
    full_at: float | None = None
    while (now := loop.time() - start) < timeout_s and (full_at is None or now < full_at + 1.0):
        seen.append(await _get(live, call_id, now))
        if full_at is None and _is_full(seen[-1], caller):
            full_at = now
        await asyncio.sleep(POLL_S)
    return seen


async def _wait_full(live: LiveApp, call_id: str, caller: str) -> None:
    for _ in range(200):
        if _is_full(await _get(live, call_id, 0.0), caller):
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("b never showed as the media owner")


async def _get(live: LiveApp, call_id: str, at: float) -> Seen:
    response = await live.client.get(f"/api/calls/{call_id}")
    if response.status_code != 200:
        return Seen(at, response.status_code)
    body = response.json()
    media = body["media"]
    return Seen(
        at,
        200,
        connection_state=body["connection_state"],
        caller=body["caller"],
        media_connected=media["connected"],
        instance_id=media["instance_id"],
        frames_in=media["frames_in"],
    )


def _is_full(seen: Seen, caller: str) -> bool:
    return (
        seen.status == 200
        and seen.connection_state == "connected"
        and seen.caller == caller
        and seen.media_connected is True
        and seen.instance_id == "b"
        and (seen.frames_in or 0) > 0
    )


def _summary(seen: list[Seen]) -> str:
    """Runs of identical answers: `0.00-2.95s 404; 3.00-7.10s 200 connecting None False None`."""
    runs: list[tuple[float, float, str]] = []
    for s in seen:
        text = f"{s.status}"
        if s.status == 200:
            text += f" {s.connection_state} {s.caller} {s.media_connected} {s.instance_id}"
        if runs and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], s.at, text)
        else:
            runs.append((s.at, s.at, text))
    return "; ".join(f"{a:.2f}-{b:.2f}s {text}" for a, b, text in runs)
