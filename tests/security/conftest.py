"""Fixtures for the security tests: a token signer and a real JWKS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.security.acs_tokens import TokenVerifier
from app.security.jwks import RemoteKeySet
from app.security.service import Security
from app.security.signing import TokenSigner
from app.server import bind_socket

AUDIENCE = "3c0a5b6e-2f4d-4e1a-9b7c-0d8e6f1a2b3c"
ISSUER = "https://acscallautomation.communication.azure.com"
LEEWAY_S = 60


class JwksServer:
    """Serves whatever `source()` returns at every path; counts requests; can answer 500."""

    def __init__(self, source: Callable[[], dict[str, Any]]) -> None:
        self.source = source
        self.requests = 0
        self.failing = False
        self.delay_s = 0.0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = bind_socket()
        host, port = sock.getsockname()[:2]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://{host}:{port}/calling/keys"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failing:
            return web.json_response({"error": "unavailable"}, status=500)
        return web.json_response(self.source())


@dataclass
class FakeServices:
    """The one field of the app's Services that the security dependencies read."""

    security: Security


@pytest.fixture(scope="session")
def signer() -> TokenSigner:
    """A signer shared by the tests that do not rotate it (key generation is the slow part)."""
    return TokenSigner(audience=AUDIENCE, issuer=ISSUER)


@pytest.fixture
def rotating_signer() -> TokenSigner:
    return TokenSigner(audience=AUDIENCE, issuer=ISSUER)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def jwks_server(signer: TokenSigner) -> AsyncIterator[JwksServer]:
    server = JwksServer(signer.jwks)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def verifier(jwks_server: JwksServer, session: aiohttp.ClientSession) -> TokenVerifier:
    return make_verifier(jwks_server, session)


def make_verifier(
    server: JwksServer, session: aiohttp.ClientSession, **key_set_options: Any
) -> TokenVerifier:
    return TokenVerifier(
        RemoteKeySet(session, server.url, **key_set_options),
        issuers=[ISSUER],
        audience=AUDIENCE,
        leeway_s=LEEWAY_S,
    )
