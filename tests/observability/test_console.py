from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.api.console import WEB_DIR
from app.calls.models import CallRecord
from app.emulator import AcsEmulator
from app.server import serve_in_background
from tests.observability.conftest import observed_app, services_of, settings_with

KEY = "console-test-key"


async def next_data(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next `data:` message of an event stream."""
    async for line in lines:
        if line.startswith("data: "):
            message: dict[str, Any] = json.loads(line[len("data: ") :])
            return message
    raise AssertionError("the stream ended")


async def wait_until(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 (a plain attribute: nothing to await on)
            await asyncio.sleep(0.01)


async def test_the_page_and_its_assets_are_served() -> None:
    app = observed_app()
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        page = await c.get("/")
        script = await c.get("/console/app.js")
        style = await c.get("/console/style.css")
        unknown = await c.get("/console/other.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="console/app.js"' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_the_console_loads_nothing_from_elsewhere(name: str) -> None:
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE)


def test_the_script_never_writes_html() -> None:
    script = (WEB_DIR / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


async def test_config_reports_no_emulator_and_no_key_by_default() -> None:
    app = observed_app()
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        config = (await c.get("/api/console/config")).json()
    assert config["emulator"] is False
    assert config["control_api_key_required"] is False


async def test_config_reports_the_emulator_and_the_key_when_set() -> None:
    app = observed_app(settings_with(control_api_key=KEY), emulator=AcsEmulator())
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        config = (await c.get("/api/console/config")).json()
    assert config["emulator"] is True
    assert config["control_api_key_required"] is True


async def test_the_event_stream_sends_a_snapshot_then_published_calls() -> None:
    app = observed_app()
    async with (
        serve_in_background(app) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        client.stream("GET", "/api/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert (await next_data(lines)) == {"type": "snapshot", "calls": []}
        services_of(app).events.publish(CallRecord(call_connection_id="call-1", caller="+1425"))
        message = await next_data(lines)
    assert message["type"] == "call"
    assert message["call"]["call_connection_id"] == "call-1"


async def test_the_snapshot_lists_the_calls_in_the_store() -> None:
    app = observed_app()
    async with serve_in_background(app) as server:
        await services_of(app).store.update(
            "call-9", lambda _: CallRecord(call_connection_id="call-9")
        )
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/api/events") as response,
        ):
            snapshot = await next_data(response.aiter_lines())
    assert [c["call_connection_id"] for c in snapshot["calls"]] == ["call-9"]


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({}, {}, 401),
        ({"key": "wrong"}, {}, 401),
        ({"key": KEY}, {}, 200),
        ({}, {"X-API-Key": KEY}, 200),
        ({}, {"Authorization": f"Bearer {KEY}"}, 200),
    ],
)
async def test_the_event_stream_needs_the_control_key_when_one_is_set(
    params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    app = observed_app(settings_with(control_api_key=KEY))
    async with (
        serve_in_background(app) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        client.stream("GET", "/api/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == status
        if status == 401:
            body = json.loads(await response.aread())
            assert body["error"]["code"] == "unauthorized"


async def test_a_client_that_leaves_releases_its_subscription() -> None:
    app = observed_app()
    async with serve_in_background(app) as server:
        hub = services_of(app).events
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/api/events") as response,
        ):
            await next_data(response.aiter_lines())
            assert hub.subscribers == 1
        # Nothing is published: the server must notice the disconnect by itself.
        await wait_until(lambda: hub.subscribers == 0)


async def test_event_streams_are_counted_without_a_duration() -> None:
    app = observed_app()
    async with serve_in_background(app) as server:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/api/events") as response,
        ):
            await next_data(response.aiter_lines())
        registry = services_of(app).metrics.registry
        labels = {"method": "GET", "route": "/api/events", "status": "200"}
        await wait_until(
            lambda: registry.get_sample_value("acs_bridge_http_requests_total", labels) == 1
        )
    duration = registry.get_sample_value(
        "acs_bridge_http_request_duration_seconds_count", {"method": "GET", "route": "/api/events"}
    )
    assert duration is None
