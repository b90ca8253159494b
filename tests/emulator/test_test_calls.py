"""Scripted test calls through `POST /api/emulator/calls`, on the service's embedded emulator:
who is called, what the caller says and presses, when the caller hangs up, and the errors."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web

from app.embedded_acs import EmbeddedAcs, embedded_acs
from app.emulator.media_client import bundled_speech
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.settings import Settings
from tests.emulator.conftest import HttpSink


@dataclass
class Service:
    acs: EmbeddedAcs
    api: httpx.AsyncClient

    async def place(self, **body: Any) -> str:
        placed = await self.api.post("/api/emulator/calls", json=body)
        assert placed.status_code == 201, placed.text
        call_id: str = placed.json()["call_connection_id"]
        return call_id

    async def ended(self, call_id: str) -> dict[str, Any]:
        """The call's record once the call and its media socket are over."""
        async with asyncio.timeout(15):
            while True:
                record: dict[str, Any] = (await self.api.get(f"/api/calls/{call_id}")).json()
                media = record["media"]
                media_over = not media["connected"] and media["disconnected_at"] is not None
                if record["connection_state"] == "disconnected" and media_over:
                    return record
                await asyncio.sleep(0.05)


@asynccontextmanager
async def service(public_base_url: str | None = None, **settings: Any) -> AsyncIterator[Service]:
    """The service on its embedded emulator, on a free port."""
    sock = bind_socket()
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    base = Settings(_env_file=None, public_base_url=public_base_url, **settings)
    async with embedded_acs(base, public_base_url=local) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with (
            serve_in_background(app, sock=sock, settings=acs.settings) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=15) as api,
        ):
            yield Service(acs, api)


@pytest.mark.parametrize("media_dtmf", [False, True])
async def test_keys_reach_the_backend_only_with_media_dtmf(media_dtmf: bool) -> None:
    async with service(media_dtmf=media_dtmf) as bridge:
        call_id = await bridge.place(dtmf=[{"at_s": 0, "digits": "12#"}], hang_up_after_s=1)
        record = await bridge.ended(call_id)
    assert record["media"]["frames_in"] > 0
    assert record["media"]["dtmf"] == ("12#" if media_dtmf else "")


async def test_the_called_number_is_the_incoming_calls_to() -> None:
    async with service() as bridge:
        call_id = await bridge.place(to="+18005550199", caller="8:acs:someone", hang_up_after_s=5)
        call = bridge.acs.emulator.calls[call_id]
        record = (await bridge.api.get(f"/api/calls/{call_id}")).json()
    assert call.targets == [
        {"kind": "phoneNumber", "rawId": "4:+18005550199", "phoneNumber": {"value": "+18005550199"}}
    ]
    assert record["callee"] == "4:+18005550199"
    assert record["caller"] == "8:acs:someone"


async def test_a_test_call_ends_by_itself_after_60_s_unless_told_otherwise() -> None:
    async with service() as bridge:
        placed = await bridge.api.post("/api/emulator/calls", json={})
        assert placed.status_code == 201, placed.text
        assert placed.json()["hang_up_after_s"] == 60
        short = await bridge.place(hang_up_after_s=0.5)
        record = await bridge.ended(short)
        first = (await bridge.api.get(f"/api/calls/{placed.json()['call_connection_id']}")).json()
    assert record["ended_by"] == "caller"
    assert first["connection_state"] == "connected"  # its 60 s are not over


@pytest.mark.parametrize("audio", ["speech", "silence", "tone"])
async def test_the_callers_audio_is_what_the_request_asked(audio: str, tmp_path: Path) -> None:
    async with service(media_backend="recorder", recordings_dir=tmp_path) as bridge:
        call_id = await bridge.place(audio=audio, hang_up_after_s=0.6)
        await bridge.ended(call_id)
        await bridge.acs.emulator.settle()
    [path] = sorted(tmp_path.glob("*.wav"))
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    assert len(pcm) >= 640 * 10
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if audio == "silence":
        assert not samples.any()
    elif audio == "speech":
        assert pcm == bundled_speech(rate)[: len(pcm)]
    else:
        peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples)
        assert abs(peak_hz - 440) < 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dtmf": [{"at_s": 1, "digits": "12x"}]}, "digits"),
        ({"dtmf": [{"at_s": -1, "digits": "1"}]}, "at_s"),
        ({"audio": "music"}, "audio"),
        ({"hang_up_after_s": 0}, "hang_up_after_s"),
        ({"to": "12345"}, "to"),
        ({"hangup_after_s": 5}, "hangup_after_s"),
    ],
)
async def test_a_request_that_is_not_valid_is_a_400_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    async with service() as bridge:
        refused = await bridge.api.post("/api/emulator/calls", json=body)
        calls = list(bridge.acs.emulator.calls)
    assert refused.status_code == 400
    errors = refused.json()["error"]["detail"]["errors"]
    assert field in errors[0]["loc"]
    assert calls == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            web.json_response(
                {"error": {"code": "store_unavailable", "message": "store unreachable: r:6379"}},
                status=503,
            ),
            "the webhook answered 503: store unreachable: r:6379",
        ),
        (web.Response(status=500, text="boom\nat line 1"), "the webhook answered 500: boom at"),
        (web.Response(status=404), "the webhook answered 404"),
    ],
)
async def test_a_refused_incoming_call_shows_the_webhooks_own_error(
    sink: HttpSink, answer: web.Response, expected: str
) -> None:
    async def refuse(request: web.Request, body: bytes) -> web.Response:
        return answer

    sink.responder = refuse
    # `localhost`: the service's own address check is for 127.0.0.1; the emulator delivers
    # the IncomingCall to this refusing webhook instead of the service.
    webhook = sink.base_url.replace("127.0.0.1", "localhost")
    async with service(public_base_url=webhook) as bridge:
        refused = await bridge.api.post("/api/emulator/calls", json={})
    assert refused.status_code == 502
    error = refused.json()["error"]
    assert error["code"] == "test_call_failed"
    assert error["message"].startswith(expected)
    assert "\n" not in error["message"]
