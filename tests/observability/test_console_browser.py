"""The console in real headless Chromium, driven by Playwright.

The browser is `CHROMIUM_PATH` (a test-only setting): `./scripts/test` finds one (see
scripts/lib.sh) and sets it; Playwright never downloads one here.

Stand-in control routes record what the page sends; the real call flow is tested elsewhere.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Header, Request
from playwright.async_api import Browser, Page, expect

from app.calls.models import (
    BackendHealth,
    BackendState,
    CallAction,
    CallRecord,
    ConnectionState,
    EndedBy,
    EventSummary,
    MediaConnection,
    MediaState,
    ToolCall,
    TranscriptEntry,
    utcnow,
)
from app.emulator import AcsEmulator
from app.security.dependencies import ControlKeyDep
from app.server import serve_in_background
from tests.observability.conftest import observed_app, services_of, settings_with

# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

KEY = "browser-test-key"
SCREENSHOT = Path(tempfile.gettempdir()) / "acs-bridge-console.png"
HOSTILE_NAME = '<img src=x onerror="window.pwned=1"> Ada & Co'
HOSTILE_RESULT = '<script>window.pwned=2</script><img src=x onerror="window.pwned=3"> shipped'


def stand_in_control(received: list[dict[str, Any]]) -> APIRouter:
    """`POST /api/calls/{id}/media/stop` and `POST /api/emulator/calls`, recording each call."""
    router = APIRouter(dependencies=[ControlKeyDep])

    @router.post("/api/calls/{call_connection_id}/media/stop", status_code=202)
    async def stop_media(
        call_connection_id: str,
        request: Request,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        received.append({"action": "stop", "call": call_connection_id, "key": x_api_key})
        services = services_of(request.app)
        record = await services.store.get(call_connection_id)
        assert record is not None
        stopping = record.model_copy(
            update={"media_state": MediaState.STOPPING, "updated_at": utcnow()}
        ).with_event("StopMediaStreamingRequested")
        services.events.publish(stopping)
        call = stopping.model_dump(mode="json")
        return {"call_connection_id": call_connection_id, "action": "stop_media", "call": call}

    @router.post("/api/emulator/calls", status_code=201)
    async def place_test_call() -> dict[str, Any]:
        received.append({"action": "place"})
        return {"event_id": "e", "call_connection_id": "c", "webhook_status": 200}

    return router


def streaming_call() -> CallRecord:
    started = utcnow() - timedelta(minutes=2, seconds=14)
    return CallRecord(
        call_connection_id="411f0b00-8f5e-4b2c-9a1e-3c0f5e7d2a91",
        correlation_id="c0ffee00-1234-4cde-8f00-abcdef012345",
        caller="+14255550123",
        caller_display_name=HOSTILE_NAME,
        callee="+18005550100",
        agent="sales",
        connection_state=ConnectionState.CONNECTED,
        media_state=MediaState.ACTIVE,
        created_at=started,
        connected_at=started,
        media=MediaConnection(
            connected=True, sample_rate=16000, frames_in=6701, frames_out=6688, instance_id="vm"
        ),
        recent_events=[
            EventSummary(type="IncomingCall", time=started),
            EventSummary(type="CallConnected", time=started),
            EventSummary(type="MediaStreamingStarted", time=started, detail="subscriptionStarted"),
            EventSummary(type="MediaConnected", time=started),
        ],
        actions=[
            CallAction(
                kind="transfer",
                operation_context="transfer:0a1b",
                detail="sales",
                requested_by="agent",
                requested_at=started,
                outcome="completed",
                outcome_detail="CallTransferAccepted",
            )
        ],
        transcript=[
            TranscriptEntry(role="caller", text=HOSTILE_NAME, time=started),
            TranscriptEntry(role="agent", text="Let me look.", time=started, interrupted=True),
        ],
        tool_calls=[
            ToolCall(
                name="lookup_order",
                arguments='{"order_id": "A-1"}',
                outcome="ok",
                result=HOSTILE_RESULT,
                duration_ms=212.4,
                time=started,
            )
        ],
    )


def other_calls() -> list[CallRecord]:
    now = utcnow()
    ended = CallRecord(
        call_connection_id="ended-call",
        caller="+442071838750",
        caller_display_name="Grace Hopper",
        callee="+18005550100",
        connection_state=ConnectionState.DISCONNECTED,
        media_state=MediaState.STOPPED,
        created_at=now - timedelta(minutes=9),
        connected_at=now - timedelta(minutes=9),
        disconnected_at=now - timedelta(minutes=5, seconds=31),
        media=MediaConnection(frames_in=10410, frames_out=10398),
    ).with_event("CallDisconnected")
    ringing = CallRecord(
        call_connection_id="new-call", caller="+33142685300", created_at=now
    ).with_event("IncomingCall")
    return [ended, ringing]


async def open_console(page: Page, base_url: str) -> None:
    await page.goto(base_url)
    await expect(page.locator("#key-dialog")).to_be_visible()
    await page.fill("#key-input", KEY)
    await page.click("#key-form button[type=submit]")
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")


async def test_console_shows_a_published_call_and_stops_its_media(browser: Browser) -> None:
    received: list[dict[str, Any]] = []
    app = observed_app(settings_with(control_api_key=KEY), stand_in_control(received))
    async with serve_in_background(app) as server:
        page = await browser.new_page(viewport={"width": 1440, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await open_console(page, server.base_url)

        services = services_of(app)
        call = streaming_call()
        await services.store.update(call.call_connection_id, lambda _: call)
        for record in [call, *other_calls()]:
            services.events.publish(record)
        row = page.locator(f'tr[data-call-id="{call.call_connection_id}"]')
        await expect(row.locator(".caller-name")).to_have_text(HOSTILE_NAME)
        assert await row.locator("img").count() == 0
        await expect(row.locator(".badge").nth(1)).to_have_text("Streaming")
        await expect(row).to_contain_text("6,701")
        await expect(row.locator(".caller-sub").first).to_contain_text("→ +18005550100 · sales")
        await expect(page.locator("#stat-active")).to_have_text("2")

        services.events.publish_level(call.call_connection_id, 0.2)
        await expect(row.locator(".meter")).to_have_attribute("aria-valuenow", "0.200")

        await row.click()
        details = page.locator("#details")
        await expect(details).to_be_visible()
        agent = details.locator("dt", has_text="Agent").locator("xpath=following-sibling::dd[1]")
        await expect(agent).to_have_text("sales")
        action = details.locator("#details-actions li")
        await expect(action).to_have_count(1)
        await expect(action.locator(".event-type")).to_have_text("Transfer")
        await expect(action.locator(".badge")).to_have_text("completed")
        await expect(action).to_contain_text("sales · by agent")
        tool = details.locator("#details-transcript li.tool-call")
        await expect(tool).to_have_count(1)
        await expect(tool.locator(".event-type")).to_have_text("lookup_order")
        await expect(tool.locator(".badge")).to_have_text("ok")
        await expect(tool.locator(".tool-duration")).to_have_text("212 ms")
        await expect(tool.locator(".tool-arguments")).to_have_text('{"order_id": "A-1"}')
        await expect(tool.locator(".tool-result")).to_have_text(f"→ {HOSTILE_RESULT}")
        lines = details.locator("#details-transcript li.transcript-line")
        await expect(lines.nth(0).locator(".transcript-text")).to_have_text(HOSTILE_NAME)
        await expect(lines.nth(1).locator(".badge")).to_have_text("interrupted")
        assert await details.locator("img, script").count() == 0
        await page.screenshot(path=SCREENSHOT, full_page=True)

        await row.locator('[data-action="stop"]').click()
        await expect(row.locator(".badge").nth(1)).to_have_text("Stopping")
        assert await page.evaluate("window.pwned === undefined")
        await page.close()
    assert received == [{"action": "stop", "call": call.call_connection_id, "key": KEY}]
    assert errors == []


async def test_place_test_call_is_offered_only_with_the_emulator(browser: Browser) -> None:
    received: list[dict[str, Any]] = []
    without = observed_app(None, stand_in_control(received))
    async with serve_in_background(without) as server:
        page = await browser.new_page()
        await page.goto(server.base_url)
        await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
        await expect(page.locator("#place-call")).to_be_hidden()
        await expect(page.locator("#browser-call")).to_be_hidden()
        await expect(page.locator("#empty")).to_be_visible()
        await page.close()

    # Never started: the stand-in answers for it; the console only asks whether there is one.
    with_emulator = observed_app(None, stand_in_control(received), emulator=AcsEmulator())
    async with serve_in_background(with_emulator) as server:
        page = await browser.new_page()
        await page.goto(server.base_url)
        await expect(page.locator("#browser-call")).to_be_visible()
        await page.click("#place-call")
        await expect(page.locator(".toast")).to_have_text("Test call placed")
        await page.close()
    assert received == [{"action": "place"}]


async def test_a_wrong_key_is_asked_for_again(browser: Browser) -> None:
    app = observed_app(settings_with(control_api_key=KEY))
    async with serve_in_background(app) as server:
        page = await browser.new_page()
        await page.goto(server.base_url)
        await page.fill("#key-input", "not-the-key")
        await page.click("#key-form button[type=submit]")
        await expect(page.locator("#key-error")).to_have_text("That key was not accepted.")
        await expect(page.locator("#conn-status")).to_have_attribute("data-state", "locked")
        await page.fill("#key-input", KEY)
        await page.click("#key-form button[type=submit]")
        await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
        assert await page.evaluate("sessionStorage.getItem('acs-bridge.control-api-key')") == KEY
        await page.close()


async def test_backend_health_who_ended_and_the_actions_stay_in_view(browser: Browser) -> None:
    now = utcnow()
    reconnecting = streaming_call().model_copy(
        update={
            "transcript": [],
            "tool_calls": [],
            "backend": BackendHealth(
                name="openai",
                state=BackendState.RECONNECTING,
                detail="connection refused: api.openai.com:443",
                attempts=3,
                since=now,
            ),
        }
    )
    ended = other_calls()[0].model_copy(
        update={
            "ended_by": EndedBy.FAILOVER,
            "backend": BackendHealth(name="echo", state=BackendState.FAILED, detail="boom"),
        }
    )
    app = observed_app(settings_with(control_api_key=KEY))
    async with serve_in_background(app) as server:
        errors: list[str] = []
        for width in (1280, 1366, 1600, 1920):
            page = await browser.new_page(viewport={"width": width, "height": 860})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await open_console(page, server.base_url)
            services = services_of(app)
            for record in (reconnecting, ended):
                services.events.publish(record)
            row = page.locator(f'tr[data-call-id="{reconnecting.call_connection_id}"]')
            badge = row.locator(".backend-badge")
            await expect(badge).to_have_text("openai · Reconnecting")
            await expect(badge).to_have_attribute("title", "connection refused: api.openai.com:443")
            ended_row = page.locator('tr[data-call-id="ended-call"]')
            await expect(ended_row.locator(".ended-by")).to_have_text("by failover")

            await row.click()
            details = page.locator("#details")
            await expect(details).to_contain_text(
                "openai · Reconnecting · connection refused: api.openai.com:443 · 3 failed attempts"
            )
            # No transcript yet: the panel says so rather than staying blank.
            await expect(details.locator("#details-transcript")).to_contain_text("No lines yet")
            # Every action of the row is on screen with the details open.
            hang_up = row.locator('[data-action="hangup"]')
            box = await hang_up.bounding_box()
            table = await page.locator(".calls .table-wrap").bounding_box()
            assert box is not None
            assert table is not None
            assert box["x"] + box["width"] <= table["x"] + table["width"] + 0.5, width

            await ended_row.click()
            await expect(details).to_contain_text("failover (no working backend)")
            assert errors == []
            await page.close()
