"""The console softphone's socket (`/api/console/phone`) with a Python client as the browser:
who may open it, the audio both ways at the browser's rate, bad messages, and every way the
call ends."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.embedded_acs import embedded_acs
from app.emulator import AcsEmulator
from app.emulator.media_client import MediaClient
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.services import Services
from app.settings import Settings
from tests.conftest import AppFactory

KEY = "phone-key"
TONE_HZ = 700.0


def tone(rate: int, seconds: float, freq: float = TONE_HZ) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.4 * 32767).astype("<i2").tobytes()


def peak_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples))


@dataclass
class Phone:
    """The browser's side of the socket: what it sent and what came back."""

    ws: ClientConnection
    rate: int
    audio: bytearray = field(default_factory=bytearray)
    controls: list[dict[str, Any]] = field(default_factory=list)

    async def talk(self, pcm: bytes) -> None:
        """Send `pcm` in 20 ms chunks at real time, reading what comes back meanwhile."""
        chunk = self.rate // 50 * 2
        for start in range(0, len(pcm), chunk):
            await self.ws.send(pcm[start : start + chunk])
            await self.read_for(0.02)

    async def read_for(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self._keep(await self.ws.recv())
        except TimeoutError:
            pass

    async def control(self, kind: str) -> dict[str, Any]:
        """Read until a control message of `kind` came (or had come)."""
        async with asyncio.timeout(10):
            while True:
                for message in self.controls:
                    if message["type"] == kind:
                        return message
                self._keep(await self.ws.recv())

    async def closed(self) -> tuple[int | None, str | None]:
        """Read to the end; the close code and reason."""
        async with asyncio.timeout(10):
            try:
                while True:
                    self._keep(await self.ws.recv())
            except ConnectionClosed:
                pass
        return self.ws.close_code, self.ws.close_reason

    def _keep(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.audio += message
        else:
            self.controls.append(json.loads(message))


@dataclass
class Service:
    app: FastAPI
    ws_url: str

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def media(self) -> MediaClient:
        assert self.services.emulator is not None
        media = self.services.emulator.media_handler
        assert isinstance(media, MediaClient)
        return media

    @asynccontextmanager
    async def phone(self, rate: int = 48000, **headers: str) -> AsyncIterator[Phone]:
        async with connect(f"{self.ws_url}?key={KEY}", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": rate}))
            phone = Phone(ws, rate)
            await phone.control("media")
            yield phone

    async def call_state(self, call_id: str) -> str | None:
        record = await self.services.store.get(call_id)
        return record.connection_state.value if record else None

    async def wait_for(self, call_id: str, **expected: str) -> None:
        """Until the call's record has `expected` (callbacks are asynchronous)."""
        record = None
        for _ in range(250):
            record = await self.services.store.get(call_id)
            fields = record.model_dump(mode="json") if record else {}
            if all(fields.get(k) == v for k, v in expected.items()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the call never had {expected}: {record}")


@asynccontextmanager
async def service(**settings: Any) -> AsyncIterator[Service]:
    """The app on the embedded emulator, every check on, with a control API key."""
    sock = bind_socket()
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    base = Settings(_env_file=None, control_api_key=KEY, **settings)
    async with embedded_acs(base, public_base_url=local) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with serve_in_background(app, sock=sock, settings=acs.settings) as server:
            yield Service(app, server.ws_base_url + "/api/console/phone")


async def refused(url: str, first: str | bytes | None = None, **headers: str) -> tuple[int, str]:
    async with connect(url, additional_headers=headers) as ws:
        if first is not None:
            await ws.send(first)
        with_end = Phone(ws, 48000)
        code, reason = await with_end.closed()
    assert code is not None
    return code, reason or ""


async def test_a_socket_without_the_right_key_is_refused() -> None:
    async with service() as s:
        assert await refused(s.ws_url) == (4401, "missing API key")
        assert await refused(f"{s.ws_url}?key=wrong") == (4401, "invalid API key")
        assert s.media.streams == {}


async def test_another_sites_page_may_not_call() -> None:
    async with service() as s:
        code, _ = await refused(f"{s.ws_url}?key={KEY}", Origin="https://attacker.example")
        assert code == 4403


async def test_the_softphone_needs_the_embedded_emulator(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(control_api_key=KEY) as live:
        url = live.base_url.replace("http://", "ws://") + f"/api/console/phone?key={KEY}"
        code, reason = await refused(url)
    assert code == 4404
    assert "embedded ACS emulator" in reason
    assert emulator.calls == {}


async def test_the_first_message_must_say_the_rate() -> None:
    async with service() as s:
        url = f"{s.ws_url}?key={KEY}"
        code, reason = await refused(url, json.dumps({"type": "start", "sample_rate": 12}))
        assert code == 1008
        assert "sample_rate" in reason
        assert (await refused(url, b"\x00\x00"))[0] == 1008
        assert s.services.emulator is not None
        assert s.services.emulator.calls == {}


async def test_the_echo_comes_back_at_the_browsers_rate() -> None:
    async with service(media_backend="echo") as s, s.phone(rate=44100) as phone:
        assert (await phone.control("media"))["sample_rate"] == 16000
        await phone.talk(tone(44100, 1.0))
        await phone.read_for(0.3)
        heard = bytes(phone.audio[-44100:])  # the last half second, at 44.1 kHz
        assert abs(peak_hz(heard, 44100) - TONE_HZ) < 5


async def test_a_24_khz_call_records_the_browser_at_24_khz(tmp_path: Path) -> None:
    async with (
        service(
            media_backend="recorder", media_audio_format="pcm24KMono", recordings_dir=tmp_path
        ) as s,
        s.phone(rate=48000) as phone,
    ):
        assert (await phone.control("media"))["sample_rate"] == 24000
        await phone.talk(tone(48000, 1.0))
        await phone.ws.send(json.dumps({"type": "hangup"}))
        await phone.closed()
        await s.services.media.close()
    [path] = tmp_path.glob("*.wav")
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 24000
        pcm = wav.readframes(wav.getnframes())
    assert abs(peak_hz(pcm, 24000) - TONE_HZ) < 5


async def test_bad_messages_are_skipped_and_the_call_goes_on() -> None:
    async with service(media_backend="echo") as s, s.phone() as phone:
        bad_messages: list[str | bytes] = [
            "not json",
            "[1, 2]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "dtmf", "tones": "12X"}),
            json.dumps({"type": "start", "sample_rate": 48000}),
            b"\x01\x02\x03",
            bytes(70_000),
        ]
        for bad in bad_messages:
            await phone.ws.send(bad)
        await phone.talk(tone(48000, 0.6))
        errors = [m["message"] for m in phone.controls if m["type"] == "error"]
        assert len(errors) == 7
        assert "the call has already started" in errors
        assert abs(peak_hz(bytes(phone.audio[-48000:]), 48000) - TONE_HZ) < 5
        call_id = (await phone.control("call"))["call_connection_id"]
        assert await s.call_state(call_id) == "connected"


async def test_closing_the_socket_ends_the_call() -> None:
    async with service(media_backend="echo") as s:
        async with s.phone() as phone:
            call_id = (await phone.control("call"))["call_connection_id"]
            await phone.talk(tone(48000, 0.2))
        await s.wait_for(call_id, connection_state="disconnected")
        assert s.media.streams == {}
        emulator = s.services.emulator
        assert emulator is not None
        await emulator.settle()
        assert emulator.event_types_for(call_id)[-1] == "CallDisconnected"


async def test_a_hang_up_from_the_service_ends_the_browsers_call() -> None:
    async with service(media_backend="echo") as s, s.phone() as phone:
        call_id = (await phone.control("call"))["call_connection_id"]
        await s.services.operations.hang_up(call_id, for_everyone=False)
        assert (await phone.control("ended"))["reason"] == "the call ended"
        assert await phone.closed() == (1000, "the call ended")


async def test_the_round_trip_goes_to_the_console_stream() -> None:
    async with service(media_backend="echo") as s:
        with s.services.events.subscribe() as feed:
            async with s.phone() as phone:
                await phone.talk(tone(48000, 1.5))
                call_id = (await phone.control("call"))["call_connection_id"]
            async with asyncio.timeout(5):
                while True:
                    messages = [json.loads(m) for m in await feed.get()]
                    trips = [m for m in messages if m["type"] == "round_trip"]
                    if trips:
                        break
    assert trips[0]["call_connection_id"] == call_id
    assert 0 < trips[0]["ms"] < 500


async def test_media_stopped_and_started_again_is_told_to_the_browser() -> None:
    async with service(media_backend="echo") as s, s.phone() as phone:
        call_id = (await phone.control("call"))["call_connection_id"]
        await s.wait_for(call_id, media_state="active")
        await s.services.operations.stop_media(call_id)
        stopped = {"type": "media", "state": "stopped"}
        async with asyncio.timeout(5):
            while stopped not in phone.controls:
                await phone.read_for(0.05)
        phone.controls.clear()
        await s.wait_for(call_id, media_state="stopped")
        await s.services.operations.start_media(call_id)
        assert (await phone.control("media"))["state"] == "started"
        await phone.talk(tone(48000, 0.6))
        assert abs(peak_hz(bytes(phone.audio[-48000:]), 48000) - TONE_HZ) < 5
