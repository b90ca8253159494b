"""Security on the real routes: ACS tokens, the Event Grid secret, the control key, limits."""

from __future__ import annotations

import logging

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from app.emulator import AcsEmulator
from app.emulator.media_client import MediaStream, StreamScript, tone
from app.main import create_app
from app.security.redaction import install_log_redaction
from app.security.signing import TokenSigner
from app.security.startup import InsecureConfiguration
from app.server import bind_socket, serve_in_background
from tests.conftest import (
    CONTROL_API_KEY,
    AppFactory,
    LiveApp,
    answered_call,
    app_settings,
    call_state,
    load_corpus,
    ws_url,
)

CALLBACK = load_corpus("callback_events/pysdk_e2e_media_CallConnected.json")


async def _bare(live: LiveApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url, timeout=5)


async def test_callbacks_need_a_valid_acs_token(live_app: LiveApp, signer: TokenSigner) -> None:
    async with await _bare(live_app) as client:
        missing = await client.post("/api/callbacks", json=[CALLBACK])
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        for token in [
            signer.mint(audience="another-resource"),
            signer.mint(issuer="https://evil.example"),
            signer.mint(lifetime_s=-600),
            TokenSigner(audience=signer.audience, kid=signer.kid).mint(),
        ]:
            bad = await client.post(
                "/api/callbacks", json=[CALLBACK], headers={"Authorization": f"Bearer {token}"}
            )
            assert bad.status_code == 401, bad.text
            assert token not in bad.text
        good = await client.post(
            "/api/callbacks", json=[CALLBACK], headers={"Authorization": f"Bearer {signer.mint()}"}
        )
        assert good.status_code == 200


async def test_media_socket_without_a_token_is_refused_before_any_audio(live_app: LiveApp) -> None:
    stream = MediaStream(
        ws_url(live_app), "call-x", "corr-x", script=StreamScript(audio=tone(16000, 0.2))
    )
    with pytest.raises(InvalidStatus) as refused:
        await stream.open()
    assert refused.value.response.status_code == 401
    assert len(live_app.services.media) == 0
    assert await live_app.services.store.get("call-x") is None


async def test_media_socket_with_a_wrong_audience_is_refused(
    live_app: LiveApp, signer: TokenSigner
) -> None:
    class WrongAudience:
        def mint(self) -> str:
            return signer.mint(audience="someone-else")

        def jwks(self) -> dict[str, object]:
            return signer.jwks()

    stream = MediaStream(ws_url(live_app), "call-y", "corr-y", token_source=WrongAudience())
    with pytest.raises(InvalidStatus):
        await stream.open()


async def test_event_grid_needs_the_secret(live_app: LiveApp) -> None:
    body = load_corpus("subscription_validation/docs_SubscriptionValidationEvent_array_2022.json")
    async with await _bare(live_app) as client:
        assert (await client.post("/api/incomingCall", json=body)).status_code == 401
        wrong = await client.post("/api/incomingCall?code=nope", json=body)
        assert wrong.status_code == 401
        handshake = await client.options(
            "/api/incomingCall", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
        )
        assert handshake.status_code == 401
        ok = await client.post(live_app.webhook_url.removeprefix(live_app.base_url), json=body)
        assert ok.status_code == 200


async def test_control_api_needs_the_key(live_app: LiveApp) -> None:
    async with await _bare(live_app) as client:
        assert (await client.get("/api/calls")).status_code == 401
        assert (await client.get("/api/calls", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (
            await client.delete("/api/calls/x", headers={"X-API-Key": "x" * 64})
        ).status_code == 401
        ok = await client.get("/api/calls", headers={"X-API-Key": CONTROL_API_KEY})
        assert ok.status_code == 200
        bearer = await client.get(
            "/api/calls", headers={"Authorization": f"Bearer {CONTROL_API_KEY}"}
        )
        assert bearer.status_code == 200


def test_acs_without_verification_refuses_to_start(emulator: AcsEmulator) -> None:
    settings = app_settings(
        8000, emulator, acs_resource_id=None, eventgrid_secret=None, control_api_key=None
    )
    with pytest.raises(InsecureConfiguration) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "ACS_RESOURCE_ID" in message
    assert "ALLOW_INSECURE_DEVELOPMENT" in message
    insecure = app_settings(
        8000,
        emulator,
        acs_resource_id=None,
        eventgrid_secret=None,
        control_api_key=None,
        allow_insecure_development=True,
    )
    create_app(insecure)


async def test_rotated_acs_keys_are_picked_up(signer: TokenSigner) -> None:
    rotating = TokenSigner(audience=signer.audience)
    async with AcsEmulator(token_source=rotating) as emu:
        emu.resource_id = signer.audience
        sock = bind_socket()
        settings = app_settings(sock.getsockname()[1], emu, jwks_min_refresh_s=0)
        app = create_app(settings)
        async with (
            serve_in_background(app, sock=sock, settings=settings) as server,
            httpx.AsyncClient(base_url=server.base_url) as client,
        ):
            for _ in range(2):
                response = await client.post(
                    "/api/callbacks",
                    json=[CALLBACK],
                    headers={"Authorization": f"Bearer {rotating.mint()}"},
                )
                assert response.status_code == 200
                rotating.rotate(retire_previous=True)


async def test_oversized_bodies_are_413(start_app: AppFactory) -> None:
    async with start_app(max_request_body_bytes=4096) as live:
        response = await live.client.post("/api/callbacks", content=b"[" + b" " * 10000 + b"]")
        assert response.status_code == 413
        assert response.json()["error"]["message"]


async def test_secrets_never_reach_the_logs(
    live_app: LiveApp, emulator: AcsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # DEBUG: websockets and uvicorn log raw headers there
    install_log_redaction(handlers=[caplog.handler])  # as the service's logging setup does
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    await live_app.client.post("/api/calls/unknown/media/stop")
    await live_app.client.delete(f"/api/calls/{call_id}")
    await call_state(live_app, call_id, connection_state="disconnected")
    contexts = [
        r.body["incomingCallContext"] for r in emulator.requests if r.path.endswith(":answer")
    ]
    text = caplog.text
    assert contexts
    assert contexts[0] not in text
    assert emulator.access_key not in text
    assert CONTROL_API_KEY not in text
    assert "eyJ" not in text  # no JWT
