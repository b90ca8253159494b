"""OutboundAudio without sockets: real-time pacing with a lead, one playback per stretch of
speech, StopAudio on interruption."""

from __future__ import annotations

from app.backends.pipecat.audio import OutboundAudio
from tests.backends.realtime.conftest import FakeOutput

RATE = 16000
CHUNK = RATE * 2 * 40 // 1000  # 40 ms, Pipecat's default output chunk


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def audio(output: FakeOutput, clock: Clock) -> OutboundAudio:
    return OutboundAudio(output, RATE, lead_ms=120, clock=clock, sleep=clock.sleep)


async def speak(paced: OutboundAudio, chunks: int) -> None:
    for _ in range(chunks):
        await paced.pace(CHUNK)
        await paced.play(bytes(CHUNK))


async def test_chunks_go_out_at_real_time_a_lead_ahead() -> None:
    clock, output = Clock(), FakeOutput()
    await speak(audio(output, clock), 6)
    # The first four chunks (up to 120 ms ahead) go at once, then one every 40 ms.
    assert clock.slept == [0.04, 0.04]
    assert len({playback for kind, playback in output.log if kind == "play"}) == 1


async def test_a_pause_starts_a_new_playback_and_ends_the_last() -> None:
    clock, output = Clock(), FakeOutput()
    paced = audio(output, clock)
    await speak(paced, 2)
    first = paced.playback_id
    clock.now += 1.0  # the line went quiet
    await speak(paced, 1)
    assert paced.playback_id != first
    assert ("end", first) in output.log


async def test_an_interruption_stops_the_audio_and_the_next_turn_is_a_new_playback() -> None:
    clock, output = Clock(), FakeOutput()
    paced = audio(output, clock)
    await speak(paced, 2)
    first, turn = paced.playback_id, paced.turn
    paced.interrupt()
    await speak(paced, 1)
    assert output.log[2] == ("stop", None)
    assert paced.turn == turn + 1
    assert paced.playback_id != first


async def test_until_heard_waits_for_what_the_caller_has_not_heard() -> None:
    heard: dict[str, float] = {}
    clock, output = Clock(), FakeOutput(heard=lambda playback: heard.get(playback, 0.0))
    paced = audio(output, clock)
    await speak(paced, 2)
    playback = paced.playback_id
    assert playback is not None
    assert paced.unheard_ms() == 80.0
    heard[playback] = 80.0
    await paced.until_heard(timeout_s=1.0)
    assert output.ended_playbacks() == [playback]
    assert paced.unheard_ms() == 0.0
