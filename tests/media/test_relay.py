"""The /ws relay end to end, with the echo backend and ACS-like streams."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from app.emulator.media_client import StreamScript, tone
from tests.conftest import AppFactory, LiveApp, load_corpus
from tests.media.conftest import StreamFactory


async def _record(live: LiveApp, call_id: str) -> dict[str, object]:
    response = await live.client.get(f"/api/calls/{call_id}")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_echo_returns_the_callers_audio_in_exact_frames(
    echo_app: LiveApp, open_stream: StreamFactory, rate: int
) -> None:
    audio = tone(rate, 1.0)
    script = StreamScript(audio=audio, loop=False)
    async with open_stream(echo_app, sample_rate=rate, script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 50, timeout=5)
        frames = stream.audio_received
        assert all(len(f.pcm) == rate * 2 // 50 for f in frames)
        assert b"".join(f.pcm for f in frames[:50]) == audio[: 50 * rate * 2 // 50]


async def test_media_socket_shows_on_the_calls_state(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    async with open_stream(echo_app, call_connection_id="call-state-1") as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 5)
        record = await _record(echo_app, "call-state-1")
        media = record["media"]
        assert isinstance(media, dict)
        assert media["connected"] is True
        assert record["correlation_id"] == stream.correlation_id
    for _ in range(100):
        record = await _record(echo_app, "call-state-1")
        media = record["media"]
        assert isinstance(media, dict)
        if not media["connected"]:
            break
        await asyncio.sleep(0.02)
    assert media["connected"] is False
    assert media["frames_in"] >= 5
    assert media["frames_out"] >= 5
    assert media["sample_rate"] == 16000


async def test_bad_frames_mid_stream_are_counted_and_the_call_goes_on(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    truncated = json.dumps(load_corpus("websocket_inbound/docs_AudioData_truncated_values.json"))
    bad: list[tuple[int, str | bytes]] = [
        (3, "not json"),
        (4, b"\x00\x01binary"),
        (5, truncated),
        (6, '{"kind":"AudioData","audioData":{"data":5}}'),
        (7, '{"kind":"AudioData"}'),
        (8, "[]"),
        (9, '{"kind":"SomethingNew","somethingNew":{}}'),
    ]
    script = StreamScript(audio=tone(16000, 1.0), injected=bad)
    async with open_stream(echo_app, call_connection_id="call-bad", script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 30, timeout=5)
        assert not stream.closed
    await asyncio.sleep(0.1)
    media = (await _record(echo_app, "call-bad"))["media"]
    assert isinstance(media, dict)
    assert media["malformed_frames"] == 6  # the unknown kind is tolerated, not malformed


async def test_every_corpus_message_is_accepted(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    names = [
        "docs_AudioMetadata",
        "docs_DtmfData",
        "docs_TranscriptionMetadata",
        "docs_TranscriptionData",
    ]
    injected = [(2, json.dumps(load_corpus(f"websocket_inbound/{n}.json"))) for n in names]
    script = StreamScript(audio=tone(16000, 0.5), injected=injected)
    async with open_stream(echo_app, call_connection_id="call-corpus", script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 15)
    await asyncio.sleep(0.1)
    record = await _record(echo_app, "call-corpus")
    media = record["media"]
    assert isinstance(media, dict)
    assert media["malformed_frames"] == 0
    assert media["dtmf"] == "3"
    transcript = record["transcript"]
    assert isinstance(transcript, list)
    assert transcript[0]["text"] == "Testing transcription."


async def test_dtmf_is_recorded_on_the_call(echo_app: LiveApp, open_stream: StreamFactory) -> None:
    script = StreamScript(audio=tone(16000, 0.5), dtmf=[(2, "1"), (4, "#"), (6, "9")])
    async with open_stream(echo_app, call_connection_id="call-dtmf", script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
    await asyncio.sleep(0.1)
    media = (await _record(echo_app, "call-dtmf"))["media"]
    assert isinstance(media, dict)
    assert media["dtmf"] == "1#9"


async def test_outbound_frames_are_paced_at_real_time(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    async with open_stream(
        echo_app, script=StreamScript(audio=tone(16000, 2.0), loop=False)
    ) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 100, timeout=6)
        times = [f.at for f in stream.audio_received[:100]]
    # 99 gaps of 20 ms; generous bounds for a loaded CI machine.
    span = times[-1] - times[0]
    assert 1.6 < span < 2.6, span


async def test_max_concurrent_calls_refuses_with_1013(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with (
        start_app(max_concurrent_calls=2) as live,
        open_stream(live) as first,
        open_stream(live) as second,
    ):
        await first.wait_for(lambda s: len(s.audio_received) > 0)
        await second.wait_for(lambda s: len(s.audio_received) > 0)
        async with open_stream(live) as third:
            await third.wait_closed()
            assert third.close_code == 1013
            assert "limit" in (third.close_reason or "")
        assert not first.closed


async def test_idle_socket_is_closed(start_app: AppFactory, open_stream: StreamFactory) -> None:
    async with start_app(media_idle_timeout_s=0.3) as live:
        script = StreamScript(audio=tone(16000, 0.1), loop=False)
        async with open_stream(live, script=script) as stream:
            await stream.wait_closed(timeout=5)
            assert stream.close_code == 1000
            assert "no inbound audio" in (stream.close_reason or "")


async def test_max_call_duration_closes_the_socket(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with start_app(max_call_duration_s=0.5) as live, open_stream(live) as stream:
        await stream.wait_closed(timeout=5)
        assert "exceeded" in (stream.close_reason or "")


async def test_oversized_message_closes_with_1009(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with start_app(media_max_message_bytes=8192) as live, open_stream(live) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) > 0)
        await stream.send_raw("x" * 20000)
        await stream.wait_closed()
        assert stream.close_code == 1009


async def test_unmixed_participants_are_all_relayed(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    script = StreamScript(audio=tone(16000, 1.0), participants=("8:acs:a", "8:acs:b", "8:acs:c"))
    async with open_stream(echo_app, call_connection_id="call-unmixed", script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 60, timeout=5)
    await asyncio.sleep(0.1)
    media = (await _record(echo_app, "call-unmixed"))["media"]
    assert isinstance(media, dict)
    assert media["frames_in"] >= 60


async def test_many_short_calls_leave_no_tasks_behind(
    echo_app: LiveApp, open_stream: StreamFactory
) -> None:
    baseline = len(asyncio.all_tasks())
    for _ in range(60):
        script = StreamScript(audio=tone(16000, 0.06), loop=False)
        async with open_stream(echo_app, script=script) as stream:
            await stream.wait_for(lambda s: len(s.audio_received) >= 2)
    services = echo_app.services
    for _ in range(100):
        if len(services.media) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(services.media) == 0
    assert services.media.total == 60
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= baseline + 2


async def test_silence_in_equals_silence_out(echo_app: LiveApp, open_stream: StreamFactory) -> None:
    script = StreamScript(audio=bytes(640 * 10), loop=False, silent_after_audio=True)
    async with open_stream(echo_app, script=script) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        pcm = np.frombuffer(b"".join(f.pcm for f in stream.audio_received[:10]), dtype="<i2")
        assert not pcm.any()


async def test_permessage_deflate_is_declined_unless_enabled(
    echo_app: LiveApp, start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with open_stream(echo_app) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 2)
        assert stream.extensions is None
    async with start_app(media_ws_compression=True) as live, open_stream(live) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) >= 2)
        assert stream.extensions is not None
        assert "permessage-deflate" in stream.extensions
