"""The console softphone's socket protocol, browser to service (sans I/O).

    {"type": "start", "sample_rate": 48000}   first message: the browser's audio rate
    <binary>                                  PCM16 little-endian mono at that rate
    {"type": "dtmf", "tones": "12#"}          keypad tones (0-9 * # A-D)
    {"type": "hangup"}                        end the call

Anything else raises `BadMessage`; the socket counts it and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.calls.targets import InvalidTones, parse_tones

MIN_RATE, MAX_RATE = 8000, 192000
MAX_AUDIO_BYTES = 64 * 1024  # a browser sends 20 ms (1,920 bytes at 48 kHz) at a time
MAX_TEXT_CHARS = 1024


class BadMessage(Exception):
    """A message the softphone socket does not accept; `str()` says why (safe to log)."""


@dataclass(frozen=True, slots=True)
class Start:
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    tones: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


PhoneMessage = Start | Audio | Dtmf | HangUp


def parse_phone_message(text: str | None, data: bytes | None) -> PhoneMessage:
    """One WebSocket message (its text or its bytes) as a `PhoneMessage`."""
    if data is not None:
        if len(data) > MAX_AUDIO_BYTES:
            raise BadMessage(f"audio message of {len(data)} bytes (at most {MAX_AUDIO_BYTES})")
        if len(data) % 2:
            raise BadMessage("audio message of an odd number of bytes (PCM16 expected)")
        return Audio(data)
    if text is None or len(text) > MAX_TEXT_CHARS:
        raise BadMessage("empty or oversized text message")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise BadMessage("text message is not JSON") from None
    if not isinstance(body, dict):
        raise BadMessage("text message is not a JSON object")
    kind = body.get("type")
    if kind == "start":
        rate = body.get("sample_rate")
        if type(rate) is not int or not MIN_RATE <= rate <= MAX_RATE:
            raise BadMessage(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}")
        return Start(rate)
    if kind == "dtmf":
        tones = body.get("tones")
        if not isinstance(tones, str):
            raise BadMessage("tones must be a string of 0-9 * # A-D")
        try:
            parse_tones(tones)  # the rule the control API and the agent's tool follow
        except InvalidTones as exc:
            raise BadMessage(str(exc)) from None
        return Dtmf(tones.strip().upper())
    if kind == "hangup":
        return HangUp()
    raise BadMessage(f"unknown message type {str(kind)[:40]!r}")
