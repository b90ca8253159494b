from __future__ import annotations

import httpx
import websockets
from fastapi import APIRouter, FastAPI, WebSocket

from app.server import serve_in_background
from tests.observability.conftest import observed_app, services_of

routes = APIRouter()


@routes.get("/items/{item_id}")
async def get_item(item_id: str) -> dict[str, str]:
    return {"id": item_id}


@routes.get("/boom")
async def boom() -> None:
    raise RuntimeError("unexpected")


@routes.websocket("/socket")
async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hi")
    await websocket.close()


def requests_total(app: FastAPI, method: str, route: str, status: str) -> float:
    metrics = services_of(app).metrics
    labels = {"method": method, "route": route, "status": status}
    return metrics.registry.get_sample_value("acs_bridge_http_requests_total", labels) or 0.0


async def test_requests_are_labelled_by_route_template_not_path() -> None:
    app = observed_app(None, routes)
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        for item in ("a", "b", "c"):
            assert (await c.get(f"/items/{item}")).status_code == 200
        exposition = (await c.get("/metrics")).text
    assert requests_total(app, "GET", "/items/{item_id}", "200") == 3
    assert 'route="/items/{item_id}"' in exposition
    assert "/items/a" not in exposition


async def test_statuses_are_counted_per_route() -> None:
    app = observed_app(None, routes)
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        assert (await c.get("/no/such/path")).status_code == 404
        assert (await c.post("/items/a")).status_code == 405
        assert (await c.get("/boom")).status_code == 500
    assert requests_total(app, "GET", "unmatched", "404") == 1
    assert requests_total(app, "POST", "/items/{item_id}", "405") == 1
    assert requests_total(app, "GET", "/boom", "500") == 1


async def test_durations_are_observed_per_route_template() -> None:
    app = observed_app(None, routes)
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        await c.get("/items/a")
    registry = services_of(app).metrics.registry
    count = registry.get_sample_value(
        "acs_bridge_http_request_duration_seconds_count",
        {"method": "GET", "route": "/items/{item_id}"},
    )
    assert count == 1


async def test_websocket_scopes_are_not_counted() -> None:
    app = observed_app(None, routes)
    async with (
        serve_in_background(app) as server,
        websockets.connect(f"{server.ws_base_url}/socket") as ws,
    ):
        assert await ws.recv() == "hi"
    exposition = services_of(app).metrics.render()[0].decode()
    assert "/socket" not in exposition


async def test_metrics_endpoint_serves_the_prometheus_text_format() -> None:
    app = observed_app()
    async with serve_in_background(app) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        response = await c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE acs_bridge_media_frames_total counter" in response.text


async def test_two_apps_count_into_their_own_registries() -> None:
    first, second = observed_app(None, routes), observed_app(None, routes)
    async with (
        serve_in_background(first) as one,
        serve_in_background(second) as two,
        httpx.AsyncClient() as client,
    ):
        await client.get(f"{one.base_url}/items/a")
        await client.get(f"{one.base_url}/items/b")
        await client.get(f"{two.base_url}/items/c")
    assert requests_total(first, "GET", "/items/{item_id}", "200") == 2
    assert requests_total(second, "GET", "/items/{item_id}", "200") == 1
