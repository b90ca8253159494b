"""The softphone's round trip: a frame matched with its echo by content."""

from __future__ import annotations

from app.emulator.round_trip import RoundTrip


def frame(n: int) -> bytes:
    return bytes([n % 250 + 1]) * 640


def test_an_echo_is_timed_from_its_own_frame() -> None:
    trip = RoundTrip()
    for n in range(5):
        trip.sent(frame(n), at=n * 0.02)
    trip.received(frame(0), at=0.03)  # 30 ms after it left
    trip.received(frame(1), at=0.05)
    trip.received(frame(2), at=0.07)
    assert trip.ms is not None
    assert round(trip.ms) == 30


def test_a_lost_echo_does_not_shift_the_others() -> None:
    trip = RoundTrip()
    for n in range(4):
        trip.sent(frame(n), at=n * 0.02)
    trip.received(frame(2), at=0.05)  # frames 0 and 1 never come back
    trip.received(frame(3), at=0.07)
    assert trip.ms is not None
    assert round(trip.ms) == 10


def test_repeated_content_matches_the_oldest_first() -> None:
    trip = RoundTrip()
    trip.sent(frame(7), at=0.0)
    trip.sent(frame(7), at=0.1)
    trip.received(frame(7), at=0.02)
    assert trip.ms is not None
    assert round(trip.ms) == 20


def test_silence_and_other_audio_give_no_round_trip() -> None:
    trip = RoundTrip()
    trip.sent(bytes(640), at=0.0)
    trip.received(bytes(640), at=0.01)
    trip.sent(frame(1), at=0.02)
    trip.received(frame(2), at=0.03)  # a backend's own audio, not an echo
    assert trip.ms is None
