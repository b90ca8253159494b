"""The console's softphone in Chromium with a fake microphone (a 1 kHz tone in bursts), against
the real service on the embedded emulator: the page talks, hears, keys DTMF and hangs up."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from app.embedded_acs import embedded_acs
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.services import Services
from app.settings import Settings
from tests.backends.realtime.fake_server import fake_realtime, model_tone
from tests.observability.conftest import MICROPHONE_HZ

# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

KEY = "softphone-key"
MS = re.compile(r"^\d+ ms$")
MODEL_HZ = 300.0  # the fake model's voice
SCREENSHOT = Path(tempfile.gettempdir()) / "acs-bridge-softphone.png"


@dataclass
class Console:
    """The service on the embedded emulator, and a console page logged in to it."""

    app: FastAPI
    base_url: str
    page: Page
    errors: list[str]

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def call(self) -> str:
        """Click "Call from this browser"; the call's id once its audio flows."""
        await self.page.click("#browser-call")
        phone = self.page.locator("#phone")
        await expect(phone).to_have_attribute("data-state", "connected", timeout=10_000)
        call_id = await phone.get_attribute("data-call-id")
        assert call_id
        return call_id

    async def record(self, call_id: str, **expected: str) -> dict[str, Any]:
        """The call's record from the control API, once its fields equal `expected`."""
        async with httpx.AsyncClient(base_url=self.base_url, headers={"X-API-Key": KEY}) as api:
            async with asyncio.timeout(10):
                while True:
                    body: dict[str, Any] = (await api.get(f"/api/calls/{call_id}")).json()
                    if all(body.get(k) == v for k, v in expected.items()):
                        return body
                    await asyncio.sleep(0.05)

    async def heard_frequency(self, expected: float, tolerance: float = 30.0) -> float:
        """Wait until the page's playback analyser hears `expected` Hz; what it heard."""
        handle = await self.page.wait_for_function(
            """([expected, tolerance]) => {
                const heard = window.AcsBridgePhone.phone.peakFrequency();
                return heard !== null && Math.abs(heard - expected) < tolerance ? heard : false;
            }""",
            arg=[expected, tolerance],
            timeout=10_000,
        )
        heard: float = await handle.json_value()
        return heard


@asynccontextmanager
async def console(browser: Browser, **settings: Any) -> AsyncIterator[Console]:
    sock = bind_socket()
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    base = Settings(_env_file=None, control_api_key=KEY, **settings)
    async with embedded_acs(base, public_base_url=local) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with serve_in_background(app, sock=sock, settings=acs.settings) as server:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server.base_url + "/")
            await page.fill("#key-input", KEY)
            await page.click("#key-form button[type=submit]")
            await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
            try:
                yield Console(app, server.base_url, page, errors)
            finally:
                await page.close()


async def test_the_echo_of_the_microphone_plays_in_the_page(phone_browser: Browser) -> None:
    async with console(phone_browser, media_backend="echo") as c:
        call_id = await c.call()
        heard = await c.heard_frequency(MICROPHONE_HZ)
        assert abs(heard - MICROPHONE_HZ) < 30
        await expect(c.page.locator("#phone-rtt")).to_have_text(MS, timeout=10_000)
        await expect(c.page.locator("#phone-rate")).to_have_text("16 kHz")
        details = c.page.locator("#details")
        await expect(details).to_contain_text(call_id)
        await expect(details.locator("#details-fields")).to_contain_text("Round trip")
        assert c.errors == []


async def test_a_stop_audio_empties_the_playback_buffer(phone_browser: Browser) -> None:
    async with console(phone_browser, media_backend="echo") as c:
        call_id = await c.call()
        phone = c.page.locator("#phone")
        await c.heard_frequency(MICROPHONE_HZ)
        await c.page.wait_for_function(
            "() => Number(document.getElementById('phone').dataset.bufferMs) > 0", timeout=5_000
        )
        async with httpx.AsyncClient(base_url=c.base_url, headers={"X-API-Key": KEY}) as api:
            response = await api.post(f"/api/calls/{call_id}/audio/stop")
        assert response.status_code == 200, response.text
        await expect(phone).to_have_attribute("data-stops", "1")
        # What was queued when the StopAudio came was dropped, none of it played.
        dropped = await phone.get_attribute("data-last-stop-dropped-ms")
        assert dropped is not None
        assert int(dropped) > 0
        await c.heard_frequency(MICROPHONE_HZ)  # and the call goes on
        assert c.errors == []


async def test_the_recording_holds_the_microphone_at_the_call_rate(
    phone_browser: Browser, tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    async with console(phone_browser, media_backend="recorder", recordings_dir=recordings) as c:
        call_id = await c.call()
        await c.page.wait_for_timeout(1500)  # the caller talks for a while
        await c.page.click("#phone-hangup")
        await expect(c.page.locator("#phone")).to_have_attribute("data-state", "ended")
        await c.record(call_id, connection_state="disconnected")
        await c.services.media.close()  # the recorder has closed its files
    [path] = sorted(recordings.glob("*.wav"))
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert rate == 16000
    assert len(samples) > rate // 2
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    assert abs(np.argmax(spectrum) * rate / len(samples) - MICROPHONE_HZ) < 10


async def test_keypad_tones_reach_the_backend(phone_browser: Browser, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with console(
        phone_browser, media_backend="recorder", recordings_dir=recordings, media_dtmf=True
    ) as c:
        call_id = await c.call()
        for tone in "12#":
            await c.page.click(f'#phone-keypad button[data-tone="{tone}"]')
        await expect(c.page.locator("#phone-typed")).to_have_text("12#")
        record = await c.record(call_id)
        async with asyncio.timeout(5):
            while record["media"]["dtmf"] != "12#":
                await asyncio.sleep(0.1)
                record = await c.record(call_id)
        await c.page.click("#phone-hangup")
        await c.record(call_id, connection_state="disconnected")
        await c.services.media.close()
    [sidecar] = sorted(recordings.glob("*.json"))
    events = json.loads(sidecar.read_text())["events"]
    assert [e["digit"] for e in events if e["type"] == "dtmf"] == ["1", "2", "#"]


async def test_hanging_up_in_the_page_ends_the_call(phone_browser: Browser) -> None:
    async with console(phone_browser, media_backend="echo") as c:
        call_id = await c.call()
        await c.page.click("#phone-hangup")
        await expect(c.page.locator("#phone")).to_have_attribute("data-state", "ended")
        await expect(c.page.locator("#phone-detail")).to_have_text("hung up from the browser")
        record = await c.record(call_id, connection_state="disconnected")
        assert "CallDisconnected" in [e["type"] for e in record["recent_events"]]
        row = c.page.locator(f'tr[data-call-id="{call_id}"]')
        await expect(row.locator(".badge").first).to_have_text("Ended")
        # The browser was the caller: it ended the call, and no playback buffer lives on.
        assert record["ended_by"] == "caller"
        await expect(row.locator(".ended-by")).to_have_text("by caller")
        await expect(c.page.locator("#phone-buffer")).to_have_text("—")
        assert c.errors == []


async def test_the_transcript_grows_as_both_sides_speak(phone_browser: Browser) -> None:
    async with (
        fake_realtime() as fake,
        console(
            phone_browser,
            media_backend="openai",
            openai_api_key="sk-console",
            openai_base_url=fake.openai_base_url,
        ) as c,
    ):
        await c.call()
        session = await fake.session()
        await session.wait_for_event("session.update")
        transcript = c.page.locator("#details-transcript")
        await session.caller_said("item_c1", "Are you open today?")
        await expect(transcript.locator("li.transcript-line")).to_have_count(1)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(3000))
        await c.heard_frequency(MODEL_HZ)
        # The caller barges in: the agent's audio stops at once, its line is marked.
        await session.speech_started("item_c2")
        await expect(c.page.locator("#phone")).to_have_attribute("data-stops", "1")
        await session.finish_response("resp_1", "item_a1", "Yes, we are open until six.")
        lines = transcript.locator("li.transcript-line")
        await expect(lines).to_have_count(2)
        await expect(lines.nth(0).locator(".speaker")).to_have_text("Caller")
        await expect(lines.nth(0).locator(".transcript-text")).to_have_text("Are you open today?")
        await expect(lines.nth(1).locator(".speaker")).to_have_text("Agent")
        await expect(lines.nth(1).locator(".badge")).to_have_text("interrupted")
        await expect(lines.nth(1).locator(".event-time")).to_have_text(re.compile(r"\d\d:\d\d"))
        await c.page.wait_for_function(
            "() => Number(document.getElementById('phone').dataset.bufferMs) === 0", timeout=5_000
        )
        await c.page.screenshot(path=SCREENSHOT, full_page=True)
        assert c.errors == []
