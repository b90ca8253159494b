"""The Realtime backend behind the real /ws, with the emulator's media client as the caller
(tests marked SERVICES run for OpenAI and Voice Live alike)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from app.backends.catalog import BackendFactory, backend_factory
from app.backends.realtime import create_azure_backend, create_openai_backend
from app.emulator import AcsEmulator
from app.emulator.media_client import MediaStream, StreamScript, tone
from tests.backends.realtime.conftest import SERVICES, backend_settings
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, FakeSession, model_tone
from tests.conftest import (
    AppFactory,
    LiveApp,
    StreamFactory,
    answered_call,
    call_state,
    media_client,
)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


@asynccontextmanager
async def realtime_call(
    start_app: AppFactory,
    open_stream: StreamFactory,
    fake: FakeRealtime,
    *,
    sample_rate: int = 16000,
    call_id: str = "call-rt",
    **settings: Any,
) -> AsyncIterator[tuple[LiveApp, MediaStream, FakeSession]]:
    async with (
        start_app(**backend_settings(fake, media_idle_timeout_s=10, **settings)) as live,
        open_stream(
            live,
            sample_rate=sample_rate,
            script=StreamScript(audio=tone(sample_rate, 1.0)),
            call_connection_id=call_id,
        ) as stream,
    ):
        session = await fake.session()
        await session.wait_for_event("session.update")
        yield live, stream, session


async def _record(live: LiveApp, call_id: str) -> dict[str, Any]:
    response = await live.client.get(f"/api/calls/{call_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def wait_disconnected(live: LiveApp, call_id: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            record = await _record(live, call_id)
            if not record["media"]["connected"]:
                return record
            await asyncio.sleep(0.02)


def test_both_names_are_registered() -> None:
    openai_factory: BackendFactory = create_openai_backend
    azure_factory: BackendFactory = create_azure_backend
    assert backend_factory("openai") is openai_factory
    assert backend_factory("azure-openai") is azure_factory


async def test_an_answered_call_greets_the_caller_and_hears_them(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeRealtime
) -> None:
    async with start_app(
        media_backend="openai",
        openai_api_key="sk-e2e",
        openai_base_url=fake.openai_base_url,
        media_audio_format="pcm24KMono",
        realtime_greeting="Welcome the caller to Contoso.",
    ) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        session = await fake.session()
        greeting = await session.wait_for_event("response.create")
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(400))
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        await session.wait_for(lambda s: len(s.append_sizes) >= 3)  # the bundled speech
    assert greeting["response"]["instructions"].endswith("Welcome the caller to Contoso.")
    assert {len(frame.pcm) for frame in stream.audio_received} == {960}
    assert rms(bytes(session.appended)) > 100


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_audio_round_trips_at_the_calls_rate(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime, rate: int
) -> None:
    answer = model_tone(1000)
    async with realtime_call(start_app, open_stream, fake, sample_rate=rate) as (
        _,
        stream,
        session,
    ):
        await session.wait_for(lambda s: len(s.append_sizes) >= 4)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", answer)
        await stream.wait_for(lambda s: len(s.audio_received) >= 20)
        frames = stream.audio_received
    assert set(session.append_sizes) == {20 * BYTES_PER_MS}  # one append per frame
    assert rms(bytes(session.appended)) > 1000  # the caller's tone, resampled to 24 kHz
    assert all(len(frame.pcm) == rate * 2 // 50 for frame in frames)
    played = b"".join(frame.pcm for frame in frames[:20])
    if rate == 24000:
        assert played == answer[: len(played)]  # passed through untouched
    else:
        assert rms(played[640:]) == pytest.approx(rms(answer), rel=0.1)


@SERVICES
async def test_barge_in_sends_stop_audio_before_any_further_audio_and_a_truncate_within_it(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake) as (_, stream, session):
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(3000))
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        await session.speech_started()
        await session.audio("resp_1", "item_a1", model_tone(1000))  # late deltas
        await stream.wait_for(lambda s: any(r.kind == "stop" for r in s.received))
        truncate = await session.wait_for_event("conversation.item.truncate")
        await asyncio.sleep(0.3)
        received = list(stream.received)
    stop = next(index for index, r in enumerate(received) if r.kind == "stop")
    assert all(r.kind == "stop" for r in received[stop:])
    sent_ms = 20 * stop
    assert 0 < truncate["audio_end_ms"] <= sent_ms
    assert truncate["item_id"] == "item_a1"
    assert session.of_type("response.cancel")[0]["response_id"] == "resp_1"


@SERVICES
async def test_a_dropped_model_socket_keeps_the_call_up_and_reconnects(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake) as (_, stream, first):
        await first.caller_said("item_c1", "Hello?")
        await asyncio.sleep(0.05)
        await first.drop()
        second = await fake.session(1)
        replayed = await second.wait_for_event("conversation.item.create")
        await second.wait_for(lambda s: len(s.append_sizes) >= 3)
        await second.start_response("resp_2")
        await second.audio("resp_2", "item_a2", model_tone(400))
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        assert not stream.closed
    assert second.received[0]["type"] == "session.update"
    assert replayed["item"]["content"] == [{"type": "input_text", "text": "Hello?"}]


@SERVICES
async def test_a_fatal_model_error_ends_the_media_session_and_shows_on_the_call(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake, call_id="call-fatal") as (
        live,
        stream,
        session,
    ):
        await session.error("invalid_api_key", "Incorrect API key provided.")
        await stream.wait_closed()
        assert stream.close_code == 1011
        record = await wait_disconnected(live, "call-fatal")
    assert "invalid_api_key" in record["media"]["close_reason"]


@SERVICES
async def test_transcripts_and_turn_latency_are_kept_on_the_call(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake, call_id="call-visible") as (
        live,
        stream,
        session,
    ):
        await session.speech_started()
        await session.speech_stopped()
        await session.caller_said("item_c1", "Are you open today?")
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(200))
        await session.finish_response("resp_1", "item_a1", "Yes, until six.")
        await stream.wait_for(lambda s: len(s.audio_received) >= 5)
        await asyncio.sleep(0.05)
        await stream.close()
        record = await wait_disconnected(live, "call-visible")
    assert [(line["role"], line["text"]) for line in record["transcript"]] == [
        ("caller", "Are you open today?"),
        ("agent", "Yes, until six."),
    ]
    assert record["metrics"]["turns"] == 1
    assert record["metrics"]["turn_latency_ms_last"] >= 0


async def test_azure_openai_with_a_key_serves_a_call(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with (
        start_app(
            media_backend="azure-openai",
            azure_openai_endpoint=fake.azure_endpoint,
            azure_openai_deployment="contoso-realtime",
            azure_openai_api_key="azure-e2e-key",
        ) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(300))
        await stream.wait_for(lambda s: len(s.audio_received) >= 5)
    handshake = fake.handshakes[0]
    assert handshake.path == "/openai/v1/realtime?model=contoso-realtime"
    assert handshake.headers["api-key"] == "azure-e2e-key"
    assert "Authorization" not in handshake.headers


async def test_each_turn_is_broken_down_on_the_call_and_in_the_metrics(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake, call_id="call-turns") as (
        live,
        stream,
        session,
    ):
        await session.speech_started()
        await session.speech_stopped()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(200))
        await session.finish_response("resp_1", "item_a1", "Yes.")
        await stream.wait_for(lambda s: len(s.audio_received) >= 5)
        await asyncio.sleep(1.2)  # the session's metrics flush, once a second
        exposition = (await live.client.get("/metrics")).text
        await stream.close()
        record = await wait_disconnected(live, "call-turns")
    [turn] = record["metrics"]["turn_breakdown"]
    shares = turn["inbound_ms"] + turn["backend_ms"] + turn["outbound_ms"]
    assert turn["turn_ms"] == pytest.approx(shares, abs=0.11)  # the breakdown adds up
    assert record["metrics"]["turn_latency_ms_last"] == turn["turn_ms"]
    assert turn["turn_ms"] >= turn["backend_ms"] >= 0
    assert turn["turn_ms"] >= turn["outbound_ms"] >= 0
    assert turn["inbound_ms"] >= 0
    for series in (
        'acs_bridge_bridge_latency_seconds_count{backend="openai",direction="in"}',
        'acs_bridge_bridge_latency_seconds_count{backend="openai",direction="out"}',
        'acs_bridge_turn_latency_seconds_count{backend="openai"} 1.0',
    ):
        assert series in exposition
    inbound = exposition.split('_count{backend="openai",direction="in"} ')[1].split()[0]
    assert float(inbound) > 0  # every caller frame so far
