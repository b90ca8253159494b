"""No dead air: the backend's health is on the call, and a call with no working backend is
handed to BACKEND_FAILOVER (hang up or transfer, after an optional prompt), through the real
SDK against the emulator."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.backends.base import (
    AudioIn,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    InboundEvent,
    MediaOutput,
)
from app.emulator import AcsEmulator
from tests.conftest import AppFactory, LiveApp, answered_call, call_state, media_client

QUEUE = "+14255550199"


class ControlledBackend:
    """A backend whose health the test drives: reports what it is told, fails when asked."""

    sample_rate: int | None = None

    def __init__(self, *, connect: bool = True, fail_on_frame: int | None = None) -> None:
        self.connect = connect
        self.fail_on_frame = fail_on_frame
        self.frames = 0
        self.output: MediaOutput | None = None
        self.closed = 0

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self.output = output
        if self.connect:
            output.report(BackendEvent("connected", {"backend": "test"}))
        else:
            reason = "connection refused: 127.0.0.1:9"
            output.report(BackendEvent("reconnect", {"attempt": 1, "reason": reason}))

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is AudioIn:
            self.frames += 1
            if self.frames == self.fail_on_frame:
                raise BackendError("the model refused the key (401)", fatal=True)

    async def close(self) -> None:
        self.closed += 1


def _use(live: LiveApp, backend: ControlledBackend) -> None:
    live.services.backend_factory = lambda settings: backend


async def _record_when(
    live: LiveApp,
    call_id: str,
    check: Callable[[Any], bool],
    timeout: float = 5.0,  # noqa: ASYNC109
) -> Any:
    body: Any = {}
    async with asyncio.timeout(timeout):
        while True:
            response = await live.client.get(f"/api/calls/{call_id}")
            body = response.json()
            if response.status_code == 200 and check(body):
                return body
            await asyncio.sleep(0.02)


def _events(body: Any) -> list[str]:
    return [event["type"] for event in body["recent_events"]]


async def test_an_unreachable_backend_shows_as_reconnecting_with_its_reason_then_recovers(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ControlledBackend(connect=False)
    async with start_app() as live:
        _use(live, backend)
        call_id = await answered_call(live, emulator)
        body = await _record_when(
            live,
            call_id,
            lambda b: (b.get("backend") or {}).get("state") == "reconnecting",
            timeout=2.0,  # the bound: shown within 2 s of the call starting
        )
        assert body["backend"]["detail"] == "connection refused: 127.0.0.1:9"
        assert body["backend"]["attempts"] == 1
        assert body["backend"]["name"] == live.settings.media_backend
        assert "BackendUnavailable" in _events(body)
        assert backend.output is not None
        backend.output.report(BackendEvent("connected", {"backend": "test"}))
        body = await _record_when(live, call_id, lambda b: b["backend"]["state"] == "ready")
        assert body["backend"]["detail"] is None
        assert "BackendConnected" in _events(body)
        metrics = (await live.client.get("/metrics")).text
        assert 'acs_bridge_backend_outages_total{backend="echo"} 1.0' in metrics


async def test_a_fatal_backend_error_hangs_up_the_call_instead_of_leaving_dead_air(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ControlledBackend(fail_on_frame=5)
    async with start_app() as live:
        _use(live, backend)
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="disconnected")
        body = await _record_when(live, call_id, lambda b: b["ended_by"] is not None)
        assert body["ended_by"] == "failover"
        assert body["backend"]["state"] == "failed"
        assert "401" in body["backend"]["detail"]
        hang_ups = [a for a in body["actions"] if a["kind"] == "hang_up"]
        assert [a["requested_by"] for a in hang_ups] == ["failover"]
        assert {"BackendFailed", "Failover", "HangUpRequested"} <= set(_events(body))
        assert emulator.calls[call_id].is_disconnected
        metrics = (await live.client.get("/metrics")).text
        assert 'acs_bridge_failovers_total{action="hang_up",outcome="ok"} 1.0' in metrics


def _prompt(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x10\x27" * int(rate * seconds))  # a constant level: never silence
    return path


async def test_a_backend_unavailable_too_long_plays_the_prompt_then_transfers_to_the_queue(
    start_app: AppFactory, emulator: AcsEmulator, tmp_path: Path
) -> None:
    backend = ControlledBackend(connect=False)
    prompt = _prompt(tmp_path / "sorry.wav", 0.4)
    async with start_app(
        backend_failover="transfer:queue",
        backend_failover_after_s=0.5,
        backend_failover_prompt=prompt,
        transfer_targets={"queue": QUEUE},
    ) as live:
        _use(live, backend)
        call_id = await answered_call(live, emulator)
        await emulator.wait_for(lambda: call_id in media_client(emulator).streams)
        stream = media_client(emulator).streams[call_id]
        await emulator.wait_for(lambda: emulator.calls[call_id].transfer_target is not None, 8)
        target = emulator.calls[call_id].transfer_target
        assert target is not None
        assert target["rawId"] == f"4:{QUEUE}"
        # The whole prompt reached the caller (20 frames of 20 ms) before the transfer.
        heard = [r for r in stream.audio_received if any(r.pcm)]
        assert len(heard) >= 20
        body = await _record_when(live, call_id, lambda b: b["ended_by"] is not None)
        assert body["ended_by"] == "failover"
        assert body["backend"]["state"] == "failed"
        assert body["backend"]["detail"] == (
            "no working backend for 0.5 s: connection refused: 127.0.0.1:9"
        )
        transfers = [a for a in body["actions"] if a["kind"] == "transfer"]
        assert [(a["requested_by"], a["detail"]) for a in transfers] == [("failover", "queue")]


async def test_failover_keep_leaves_the_call_up(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ControlledBackend(fail_on_frame=3)
    async with start_app(backend_failover="keep") as live:
        _use(live, backend)
        call_id = await answered_call(live, emulator)
        body = await _record_when(live, call_id, lambda b: "FailoverKept" in _events(b))
        assert body["connection_state"] == "connected"
        assert body["ended_by"] is None
        assert not emulator.calls[call_id].is_disconnected


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("BACKEND_FAILOVER", "transfer:nobody", "names no TRANSFER_TARGETS entry"),
        ("BACKEND_FAILOVER", "voicemail", "is not a failover"),
        ("BACKEND_FAILOVER_PROMPT", "/nonexistent/sorry.wav", "no such file"),
    ],
)
def test_a_failover_that_cannot_work_refuses_to_start(
    setting: str, value: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import ConfigurationError, load_settings

    monkeypatch.setenv(setting, value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None)
    assert setting in str(refused.value)
    assert words in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_stereo_prompt_is_refused(tmp_path: Path) -> None:
    from app.audio_prompt import load_prompt

    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(640))
    with pytest.raises(ValueError, match="16-bit PCM mono"):
        load_prompt(path)


async def test_failover_keep_waits_for_an_unavailable_backend_to_come_back(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ControlledBackend(connect=False)
    async with start_app(backend_failover="keep", backend_failover_after_s=0.3) as live:
        _use(live, backend)
        call_id = await answered_call(live, emulator)
        await _record_when(live, call_id, lambda b: "FailoverKept" in _events(b))
        assert backend.output is not None
        backend.output.report(BackendEvent("connected", {"backend": "test"}))
        body = await _record_when(live, call_id, lambda b: b["backend"]["state"] == "ready")
        assert body["connection_state"] == "connected"
        assert body["media"]["connected"] is True  # the media session went on
        assert backend.closed == 0
