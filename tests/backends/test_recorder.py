"""The recorder backend, end to end through /ws."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

from app.backends.base import AudioIn, CallContext, StreamFormat
from app.backends.recorder import RecorderBackend, wav_header
from app.emulator.media_client import StreamScript, tone
from app.media import eager
from tests.backends.realtime.conftest import FakeActions, FakeOutput
from tests.conftest import AppFactory
from tests.media.conftest import StreamFactory


def _read_wav(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path)) as wav:
        return wav.getframerate(), wav.readframes(wav.getnframes())


async def _wait_for_files(directory: Path, pattern: str, count: int) -> list[Path]:
    for _ in range(200):
        found = sorted(directory.glob(pattern))
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} {pattern} in {directory}")


async def test_recording_holds_exactly_the_callers_audio(
    start_app: AppFactory, open_stream: StreamFactory, tmp_path: Path
) -> None:
    audio = tone(16000, 1.0, freq=300)
    script = StreamScript(audio=audio, loop=False, dtmf=[(5, "7")])
    async with start_app(media_backend="recorder", recordings_dir=tmp_path) as live:
        async with open_stream(live, call_connection_id="rec-1", script=script) as stream:
            await stream.wait_for(lambda s: s.frames_sent >= 50, timeout=5)
            await asyncio.sleep(0.1)
        [sidecar] = await _wait_for_files(tmp_path, "*.json", 1)
        [recording] = sorted(tmp_path.glob("*.wav"))
    rate, pcm = _read_wav(recording)
    assert rate == 16000
    assert pcm == audio
    meta = json.loads(sidecar.read_text())
    assert meta["call_connection_id"] == "rec-1"
    assert meta["tracks"][0]["bytes"] == len(audio)
    assert [e["digit"] for e in meta["events"] if e["type"] == "dtmf"] == ["7"]


async def test_unmixed_calls_get_one_file_per_participant(
    start_app: AppFactory, open_stream: StreamFactory, tmp_path: Path
) -> None:
    script = StreamScript(
        audio=tone(24000, 0.4), loop=False, participants=("8:acs:alice", "8:acs:bob")
    )
    async with start_app(
        media_backend="recorder", recordings_dir=tmp_path, media_audio_channel="unmixed"
    ) as live:
        async with open_stream(live, sample_rate=24000, script=script) as stream:
            await stream.wait_for(lambda s: s.frames_sent >= 40, timeout=5)
            await asyncio.sleep(0.1)
        await _wait_for_files(tmp_path, "*.json", 1)
    wavs = sorted(tmp_path.glob("*.wav"))
    assert [p.name.rsplit("_", 1)[-1] for p in wavs] == ["alice.wav", "bob.wav"]
    for path in wavs:
        rate, pcm = _read_wav(path)
        assert rate == 24000
        assert len(pcm) == 20 * 960


async def test_the_file_is_valid_while_the_call_is_still_going(
    start_app: AppFactory, open_stream: StreamFactory, tmp_path: Path
) -> None:
    async with (
        start_app(media_backend="recorder", recordings_dir=tmp_path) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 3.0))) as stream,
    ):
        await stream.wait_for(lambda s: s.frames_sent >= 70, timeout=5)
        [recording] = await _wait_for_files(tmp_path, "*.wav", 1)
        await asyncio.sleep(0.2)
        # An abrupt end (process killed now) leaves this file: its header must match its data.
        raw = recording.read_bytes()
        assert len(raw) > 44
        assert raw[:44] == wav_header(16000, len(raw) - 44)


async def test_receive_waits_only_for_a_disk_write_and_every_frame_lands_in_one_file(
    tmp_path: Path,
) -> None:
    recorder = RecorderBackend(tmp_path)
    call = CallContext("rec-eager", None, StreamFormat(16000))
    await recorder.open(call, FakeOutput(), FakeActions())
    audio = tone(16000, 2.5, freq=500)
    frames = [audio[i : i + 640] for i in range(0, len(audio), 640)]
    waited = 0
    for frame in frames:
        # As the media feed calls it: on the spot; only a call that suspends is awaited.
        rest = eager.step(recorder.receive(AudioIn(frame)))
        if rest is not None:
            waited += 1
            await rest
    await recorder.close()
    assert waited == 2  # one flush per second of audio, off the event loop
    [recording] = recorder.paths
    assert _read_wav(recording) == (16000, audio)
