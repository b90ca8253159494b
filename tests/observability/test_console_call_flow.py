"""The operator console against the real service and the embedded emulator, in Chromium:
load the page, place a test call, see it appear, stop streaming, see the state change."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from app.embedded_acs import embedded_acs
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.settings import Settings

# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

KEY = "console-flow-key"
SCREENSHOT = Path(tempfile.gettempdir()) / "acs-bridge-console-call.png"


async def test_console_places_a_call_and_stops_its_stream(browser: Browser) -> None:
    sock = bind_socket()
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(_env_file=None, control_api_key=KEY)
    async with embedded_acs(settings, public_base_url=local) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with serve_in_background(app, sock=sock, settings=acs.settings) as server:
            page = await browser.new_page()
            await page.goto(server.base_url + "/")
            # The live stream needs the control key: the page asks for it first.
            await expect(page.locator("#key-dialog")).to_be_visible()
            await page.fill("#key-input", KEY)
            await page.click("#key-form button[type=submit]")
            await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
            await page.click("#place-call")

            row = page.locator("#calls-body tr").first
            await expect(row).to_be_visible(timeout=10_000)
            await expect(row).to_contain_text("Connected", timeout=10_000)
            await expect(row).to_contain_text("Streaming", timeout=10_000)
            call_id = await row.get_attribute("data-call-id")
            assert call_id

            await row.locator("button[data-action=stop]").click()
            await expect(row).to_contain_text("Stopped", timeout=10_000)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            record = await app.state.services.store.get(call_id)
            assert record is not None
            assert record.media_state.value == "stopped"
            await page.close()
