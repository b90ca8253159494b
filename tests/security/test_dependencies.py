"""The route guards on a real server: callbacks, control API, Event Grid webhook, WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
import websockets
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect

from app.api import errors
from app.security import dependencies
from app.security.acs_tokens import TokenVerifier
from app.security.api_keys import ControlKeyCheck, EventGridCheck
from app.security.dependencies import (
    AcsClaimsDep,
    ControlKeyDep,
    EventGridClaimsDep,
    refuse_ws_upgrade,
    verify_ws_upgrade,
)
from app.security.service import Security
from app.security.signing import TokenSigner
from app.server import RunningServer, serve_in_background
from tests.security.conftest import FakeServices, JwksServer

CONTROL_KEY = "control-key-0123456789abcdef"
EVENTGRID_SECRET = "eventgrid-secret-0123456789"


def build_app(security: Security) -> FastAPI:
    app = FastAPI()
    app.state.services = FakeServices(security=security)
    errors.install(app)
    dependencies.install(app)

    @app.post("/api/callbacks")
    async def callbacks(claims: AcsClaimsDep) -> dict[str, Any]:
        return {"aud": claims["aud"] if claims else None}

    @app.get("/api/calls", dependencies=[ControlKeyDep])
    async def calls() -> list[str]:
        return []

    @app.api_route("/api/incomingCall", methods=["POST", "OPTIONS"])
    async def incoming_call(claims: EventGridClaimsDep) -> dict[str, Any]:
        return {"entra": claims is not None}

    @app.websocket("/ws")
    async def media(websocket: WebSocket) -> None:
        verdict = await verify_ws_upgrade(websocket)
        if not verdict.allowed:
            await refuse_ws_upgrade(websocket, verdict)
            return
        await websocket.accept()
        await websocket.send_json({"aud": verdict.claims["aud"] if verdict.claims else None})
        await websocket.close()

    return app


@pytest.fixture
async def server(verifier: TokenVerifier) -> AsyncIterator[RunningServer]:
    security = Security(
        acs_tokens=verifier,
        control_key=ControlKeyCheck(CONTROL_KEY),
        eventgrid=EventGridCheck(secret=EVENTGRID_SECRET, entra=verifier),
    )
    async with serve_in_background(build_app(security)) as running:
        yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        yield http


# --- callbacks ---------------------------------------------------------------------------


async def test_callback_with_a_valid_token_is_accepted(
    client: httpx.AsyncClient, signer: TokenSigner
) -> None:
    response = await client.post(
        "/api/callbacks", json=[], headers={"Authorization": f"Bearer {signer.mint()}"}
    )
    assert response.status_code == 200
    assert response.json() == {"aud": signer.audience}


async def test_callback_without_a_token_gets_401_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/callbacks", json=[])
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": "missing bearer token"}}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_callback_with_an_expired_token_says_so(
    client: httpx.AsyncClient, signer: TokenSigner
) -> None:
    token = signer.mint(issued_at=0, lifetime_s=300)
    response = await client.post(
        "/api/callbacks", json=[], headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "token expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


async def test_callback_while_keys_are_unreachable_gets_503(
    client: httpx.AsyncClient, signer: TokenSigner, jwks_server: JwksServer
) -> None:
    jwks_server.failing = True
    response = await client.post(
        "/api/callbacks", json=[], headers={"Authorization": f"Bearer {signer.mint()}"}
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_unavailable"
    assert "retry-after" in response.headers


# --- control API -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": CONTROL_KEY}, {"Authorization": f"Bearer {CONTROL_KEY}"}],
    ids=["x-api-key", "bearer"],
)
async def test_control_api_accepts_the_key(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await client.get("/api/calls", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"X-API-Key": "wrong-key-0123456789abcdefgh"}, "invalid API key"),
        ({"X-API-Key": CONTROL_KEY[:-1]}, "invalid API key"),
        ({"X-API-Key": CONTROL_KEY + "x"}, "invalid API key"),
        ({"Authorization": f"Basic {CONTROL_KEY}"}, "missing API key"),
    ],
    ids=["missing", "wrong", "shorter", "longer", "not-bearer"],
)
async def test_control_api_refuses_without_the_key(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    response = await client.get("/api/calls", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": message}}


# --- Event Grid --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
async def test_eventgrid_accepts_the_secret(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(
        method, "/api/incomingCall", params={"code": EVENTGRID_SECRET}, json=[]
    )
    assert response.status_code == 200
    assert response.json() == {"entra": False}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing Event Grid secret or bearer token"),
        ({"code": "wrong-secret-0123456789abc"}, "invalid Event Grid secret"),
        ({"code": EVENTGRID_SECRET[:5]}, "invalid Event Grid secret"),
        ({"code": ""}, "invalid Event Grid secret"),
        ({"secret": EVENTGRID_SECRET}, "missing Event Grid secret or bearer token"),
    ],
    ids=["missing", "wrong", "shorter", "empty", "other-parameter"],
)
@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
async def test_eventgrid_refuses_without_the_secret(
    client: httpx.AsyncClient, method: str, params: dict[str, str], message: str
) -> None:
    response = await client.request(method, "/api/incomingCall", params=params, json=[])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == message


async def test_eventgrid_accepts_a_valid_bearer_token(
    client: httpx.AsyncClient, signer: TokenSigner
) -> None:
    response = await client.post(
        "/api/incomingCall", json=[], headers={"Authorization": f"Bearer {signer.mint()}"}
    )
    assert response.json() == {"entra": True}


async def test_eventgrid_refuses_an_invalid_bearer_token(
    client: httpx.AsyncClient, signer: TokenSigner
) -> None:
    token = signer.mint(audience="someone-else")
    response = await client.post(
        "/api/incomingCall", json=[], headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "wrong audience"


# --- WebSocket upgrade -------------------------------------------------------------------


async def test_ws_upgrade_with_a_valid_token_is_accepted(
    server: RunningServer, signer: TokenSigner
) -> None:
    headers = {"Authorization": f"Bearer {signer.mint()}"}
    async with connect(f"{server.ws_base_url}/ws", additional_headers=headers) as ws:
        assert await ws.recv() == f'{{"aud":"{signer.audience}"}}'


@pytest.mark.parametrize(
    ("token_kind", "message"),
    [
        ("missing", "missing bearer token"),
        ("wrong-issuer", "wrong issuer"),
        ("wrong-audience", "wrong audience"),
        ("expired", "token expired"),
        ("unknown-kid", "unknown signing key"),
    ],
)
async def test_ws_upgrade_with_a_bad_token_is_refused_before_accept(
    server: RunningServer, signer: TokenSigner, token_kind: str, message: str
) -> None:
    tokens = {
        "missing": None,
        "wrong-issuer": signer.mint(issuer="https://evil.example"),
        "wrong-audience": signer.mint(audience="someone-else"),
        "expired": signer.mint(issued_at=0),
        "unknown-kid": signer.mint(kid="unpublished"),
    }
    token = tokens[token_kind]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(f"{server.ws_base_url}/ws", additional_headers=headers):
            pytest.fail("the upgrade should have been refused")
    assert refused.value.response.status_code == 401
    assert message.encode() in refused.value.response.body


# --- checks off ----------------------------------------------------------------------------


async def test_every_route_is_open_when_security_is_disabled() -> None:
    async with (
        serve_in_background(build_app(Security.disabled())) as running,
        httpx.AsyncClient(base_url=running.base_url) as http,
        aiohttp.ClientSession() as ws_client,
    ):
        assert (await http.post("/api/callbacks", json=[])).json() == {"aud": None}
        assert (await http.get("/api/calls")).status_code == 200
        assert (await http.post("/api/incomingCall", json=[])).json() == {"entra": False}
        async with ws_client.ws_connect(f"{running.ws_base_url}/ws") as ws:
            assert await ws.receive_json() == {"aud": None}
