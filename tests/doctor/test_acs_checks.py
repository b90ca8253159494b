"""ACS_ENDPOINT: the managed identity's token, from a local stand-in of App Service's managed
identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, which azure-identity reads)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from app.doctor.acs import check_credentials
from app.doctor.report import Status
from app.settings import Settings

IDENTITY_HEADER = "doctor-test-identity-header"


@dataclass
class IdentityEndpoint:
    """App Service's managed identity endpoint: a token for the asked resource, or 400."""

    refuse: bool = False
    resources: list[str] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        self.resources.append(request.query.get("resource", ""))
        if self.refuse or request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response(
                {"error": "invalid_request", "error_description": "no identity assigned"},
                status=400,
            )
        return web.json_response(
            {
                "access_token": "test-token",
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.query.get("resource"),
                "token_type": "Bearer",
            }
        )


@pytest.fixture
async def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint()
    app = web.Application()
    app.router.add_get("/msi/token", endpoint.token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    # No developer tool (az, azd, pwsh) may answer in the identity's place on this machine.
    monkeypatch.setenv("PATH", "")
    try:
        yield endpoint
    finally:
        await runner.cleanup()


def endpoint_settings() -> Settings:
    # An endpoint nothing listens on: only the token step is under test here.
    return Settings(
        _env_file=None,
        acs_endpoint="https://127.0.0.1:9/",
        public_base_url="https://localhost/",
    )


async def test_the_managed_identity_gets_a_token_for_acs(
    identity_endpoint: IdentityEndpoint,
) -> None:
    results = await check_credentials(endpoint_settings(), timeout_s=2.0)
    identity = next(r for r in results if r.name == "acs.identity")
    assert identity.status is Status.PASS, results
    assert identity_endpoint.resources == ["https://communication.azure.com/"]


async def test_a_managed_identity_without_a_token_is_a_fail_with_the_fix(
    identity_endpoint: IdentityEndpoint,
) -> None:
    identity_endpoint.refuse = True
    results = await check_credentials(endpoint_settings(), timeout_s=2.0)
    identity = next(r for r in results if r.name == "acs.identity")
    assert identity.status is Status.FAIL, results
    assert identity.fix is not None
    assert "Contributor" in identity.fix


async def test_an_endpoint_that_is_no_acs_resource_is_told_from_a_working_one() -> None:
    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    key = base64.b64encode(b"k" * 32).decode()
    settings = Settings(
        _env_file=None,
        acs_connection_string=f"endpoint=http://127.0.0.1:{port};accesskey={key}",
        public_base_url="https://localhost/",
    )
    try:
        (result,) = await check_credentials(settings, timeout_s=2.0)
    finally:
        await runner.cleanup()
    assert result.status is Status.FAIL
    assert "no ACS endpoint" in result.saw
