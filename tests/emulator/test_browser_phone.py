"""The softphone's caller, sans I/O: the browser's audio at the call's rate, each tick's frame,
StopAudio, DTMF and the bounds that keep latency low."""

from __future__ import annotations

import numpy as np

from app.emulator.browser_phone import MAX_MIC_BACKLOG_MS, BrowserPhone
from app.emulator.live_caller import Heard

FRAME_16K = 640  # 20 ms at 16 kHz


def tone(rate: int, ms: int, freq: float = 1000.0) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.4 * 32767).astype("<i2").tobytes()


def peak_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples))


def test_the_microphone_reaches_the_call_at_its_rate() -> None:
    phone = BrowserPhone(48000)
    frames = []
    for start in range(0, 48000 * 2, 1920):  # one second of 20 ms browser chunks
        phone.speak(tone(48000, 1000)[start : start + 1920])
        said = phone.frame(16000, FRAME_16K)
        if said.pcm is not None:
            frames.append(said.pcm)
    assert all(len(frame) == FRAME_16K for frame in frames)
    assert len(frames) >= 45  # the filter's delay costs a frame or two at the start
    assert abs(peak_hz(b"".join(frames), 16000) - 1000) < 5


def test_a_tick_without_enough_audio_is_silence() -> None:
    phone = BrowserPhone(16000)
    assert phone.frame(16000, FRAME_16K).pcm is None
    phone.speak(bytes(300))
    assert phone.frame(16000, FRAME_16K).pcm is None  # kept for the next tick
    phone.speak(bytes(340))
    assert phone.frame(16000, FRAME_16K).pcm == bytes(FRAME_16K)


def test_audio_faster_than_real_time_is_bounded() -> None:
    phone = BrowserPhone(16000)
    phone.frame(16000, FRAME_16K)
    phone.speak(tone(16000, 1000))  # a second at once: only the latest 100 ms are kept
    frames = 0
    while phone.frame(16000, FRAME_16K).pcm is not None:
        frames += 1
    assert frames == MAX_MIC_BACKLOG_MS // 20
    assert phone.dropped_mic_ms == 1000 - MAX_MIC_BACKLOG_MS


async def test_the_calls_audio_goes_to_the_browser_at_its_rate() -> None:
    phone = BrowserPhone(48000)
    phone.frame(16000, FRAME_16K)
    pcm = tone(16000, 500)
    for start in range(0, len(pcm), FRAME_16K):
        phone.hear(Heard("audio", pcm[start : start + FRAME_16K]))
    batch = await phone.outgoing()
    assert batch[0].control == {"type": "media", "state": "started", "sample_rate": 16000}
    audio = b"".join(item.pcm for item in batch if item.pcm is not None)
    assert 48000 - 2000 < len(audio) <= 48000  # half a second at 48 kHz, less the filter delay
    assert abs(peak_hz(audio, 48000) - 1000) < 5


async def test_a_stop_audio_drops_what_the_browser_has_not_got() -> None:
    phone = BrowserPhone(16000)
    phone.frame(16000, FRAME_16K)
    phone.hear(Heard("audio", tone(16000, 20)))
    phone.post({"type": "call", "call_connection_id": "c"})
    phone.hear(Heard("audio", tone(16000, 20)))
    phone.hear(Heard("stop"))
    batch = await phone.outgoing()
    assert [item.control for item in batch] == [
        {"type": "media", "state": "started", "sample_rate": 16000},
        {"type": "call", "call_connection_id": "c"},
        {"type": "stop"},
    ]


def test_tones_go_with_the_next_frame_once() -> None:
    phone = BrowserPhone(16000)
    phone.press("1")
    phone.press("#")
    assert phone.frame(16000, FRAME_16K).dtmf == "1#"
    assert phone.frame(16000, FRAME_16K).dtmf == ""


async def test_a_closed_phone_takes_and_keeps_nothing() -> None:
    phone = BrowserPhone(16000)
    phone.frame(16000, FRAME_16K)
    phone.close()
    phone.speak(tone(16000, 100))
    phone.hear(Heard("audio", tone(16000, 20)))
    assert phone.frame(16000, FRAME_16K).pcm is None
    assert await phone.outgoing() == []


async def test_a_stopped_stream_is_told_and_the_next_starts_afresh() -> None:
    phone = BrowserPhone(16000)
    phone.frame(16000, FRAME_16K)
    phone.speak(bytes(300))
    phone.stream_stopped()
    phone.frame(24000, 960)
    kinds = [item.control for item in await phone.outgoing()]
    assert kinds == [
        {"type": "media", "state": "started", "sample_rate": 16000},
        {"type": "media", "state": "stopped"},
        {"type": "media", "state": "started", "sample_rate": 24000},
    ]
