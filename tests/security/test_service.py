"""build_security: which checks the settings turn on, the Entra variant, the session it closes."""

from __future__ import annotations

from contextlib import AsyncExitStack

import aiohttp
import pytest

from app.security.acs_tokens import entra_token_verifier
from app.security.errors import WrongIssuer
from app.security.service import Security, build_security
from app.security.signing import TokenSigner
from app.settings import Settings
from tests.security.conftest import AUDIENCE, JwksServer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


async def test_nothing_configured_builds_every_check_off() -> None:
    async with AsyncExitStack() as stack:
        security = await build_security(Settings(_env_file=None), stack)
    assert security == Security.disabled()


async def test_settings_turn_on_each_check() -> None:
    settings = Settings(
        _env_file=None,
        acs_resource_id=AUDIENCE,
        acs_jwks_url="http://127.0.0.1:9/keys",
        control_api_key="k",
        eventgrid_secret="s",
    )
    async with AsyncExitStack() as stack:
        security = await build_security(settings, stack)
    assert security.acs_tokens is not None
    assert security.acs_tokens.keys.url == "http://127.0.0.1:9/keys"
    assert security.control_key is not None
    assert security.eventgrid is not None


async def test_the_http_session_is_closed_with_the_stack(signer: TokenSigner) -> None:
    server = JwksServer(signer.jwks)
    await server.start()
    try:
        settings = Settings(
            _env_file=None, acs_resource_id=AUDIENCE, acs_jwks_url=server.url, jwks_min_refresh_s=0
        )
        async with AsyncExitStack() as stack:
            security = await build_security(settings, stack)
            assert security.acs_tokens is not None
            keys = security.acs_tokens.keys
            assert await keys.get_key(signer.kid)  # fetched over the session
        with pytest.raises(RuntimeError, match="Session is closed"):
            await keys.get_key("a-rotated-key")  # an unknown key id would refetch the set
    finally:
        await server.stop()


async def test_entra_tokens_are_accepted_in_v1_and_v2_issuer_forms(
    session: aiohttp.ClientSession,
) -> None:
    entra = TokenSigner(audience="api://acs-bridge")
    server = JwksServer(entra.jwks)
    await server.start()
    try:
        authority = server.url.removesuffix("/calling/keys")
        settings = Settings(
            _env_file=None,
            eventgrid_entra_audience="api://acs-bridge",
            eventgrid_entra_tenant_id=TENANT,
        )
        verifier = entra_token_verifier(settings, session, authority=authority)
        assert verifier is not None
        assert verifier.keys.url == f"{authority}/{TENANT}/discovery/v2.0/keys"
        for issuer in (f"{authority}/{TENANT}/v2.0", f"https://sts.windows.net/{TENANT}/"):
            assert (await verifier.verify(entra.mint(issuer=issuer)))["iss"] == issuer
        with pytest.raises(WrongIssuer):
            await verifier.verify(entra.mint(issuer="https://sts.windows.net/other-tenant/"))
    finally:
        await server.stop()


def test_entra_needs_both_tenant_and_audience(session: aiohttp.ClientSession) -> None:
    settings = Settings(_env_file=None, eventgrid_entra_tenant_id=TENANT)
    assert entra_token_verifier(settings, session) is None
