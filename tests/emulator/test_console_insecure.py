"""The console's softphone opened where a browser gives no microphone (plain http on a name that
is not this machine): it says so and how to fix it, rather than failing in JavaScript."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.embedded_acs import embedded_acs
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.settings import Settings
from tests.observability.conftest import CHROMIUM_ARGS, chromium_path

# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

# Chromium resolves this name to 127.0.0.1, but only loopback *names and addresses* make a
# secure context: http://bridge.test is as insecure as a server's LAN address.
REMOTE_NAME = "bridge.test"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REMOTE_NAME} 127.0.0.1"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def _click_call(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await expect(page.locator("#browser-call")).to_be_visible()
    await page.click("#browser-call")
    return page, errors


async def test_an_insecure_console_says_why_the_microphone_cannot_work(browser: Browser) -> None:
    sock = bind_socket()
    port = sock.getsockname()[1]
    base = Settings(_env_file=None)
    async with embedded_acs(base, public_base_url=f"http://127.0.0.1:{port}") as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with serve_in_background(app, sock=sock, settings=acs.settings):
            page, errors = await _click_call(browser, f"http://{REMOTE_NAME}:{port}/")
            phone = page.locator("#phone")
            await expect(phone).to_have_attribute("data-state", "unavailable")
            assert await phone.get_attribute("data-reason") == "insecure-context"
            await expect(page.locator("#phone-status")).to_have_text("No microphone")
            detail = page.locator("#phone-detail")
            await expect(detail).to_contain_text(f"http://127.0.0.1:{port}/")
            await expect(detail).to_contain_text(f"ssh -L {port}:127.0.0.1:{port}")
            await expect(detail).to_contain_text("https")
            await expect(page.locator("#phone-hangup")).to_be_disabled()
            calls = list(acs.emulator.calls)
    assert errors == []
    assert calls == []  # nothing was placed
