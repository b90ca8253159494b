"""Hostile media frames: the app's own byte limit on every frame, and invalid UTF-8 text."""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.emulator import AcsEmulator
from app.main import create_app
from app.security.signing import TokenSigner
from app.server import bind_socket, uvicorn_config
from tests.conftest import EVENTGRID_SECRET, LiveApp, app_settings, operator_headers
from tests.media.conftest import StreamFactory, ws_url

LIMIT = 256 * 1024  # MEDIA_MAX_MESSAGE_BYTES's default
UVICORN_WS_MAX_SIZE = inspect.signature(uvicorn.Config).parameters["ws_max_size"].default


@pytest.fixture
async def plain_uvicorn_app(emulator: AcsEmulator, signer: TokenSigner) -> AsyncIterator[LiveApp]:
    """The app as `uvicorn app.main:app` serves it: uvicorn's own (16 MiB) message size cap."""
    assert LIMIT < UVICORN_WS_MAX_SIZE
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    settings = app_settings(port, emulator, media_backend="echo", media_idle_timeout_s=5)
    assert settings.media_max_message_bytes == LIMIT
    app = create_app(settings)
    config = uvicorn_config(app, host, port, log_config=False, ws_max_size=UVICORN_WS_MAX_SIZE)
    config.loop = "none"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not task.done(), "the server stopped during startup"
                await asyncio.sleep(0.005)
        base_url = f"http://{host}:{port}"
        async with httpx.AsyncClient(
            base_url=base_url,
            timeout=10,
            headers=operator_headers(signer),
            params={"code": EVENTGRID_SECRET},
        ) as client:
            yield LiveApp(app, settings, base_url, client)
    finally:
        app.state.services.events.close()
        server.should_exit = True
        try:
            await asyncio.wait_for(task, timeout=15)
        finally:
            sock.close()


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"\x00" * (LIMIT + 1), id="binary"),
        # Under the limit in characters, over it in bytes (two bytes each).
        pytest.param("é" * (LIMIT // 2 + 1), id="multibyte-text"),
        pytest.param('{"kind":"AudioData","x":"' + "€" * (LIMIT // 3) + '"}', id="json-text"),
    ],
)
async def test_a_message_over_the_byte_limit_closes_with_1009(
    plain_uvicorn_app: LiveApp, open_stream: StreamFactory, message: str | bytes
) -> None:
    if isinstance(message, str):
        assert len(message) <= LIMIT < len(message.encode())
    async with open_stream(plain_uvicorn_app) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) > 0)
        await stream.send_raw(message)
        await stream.wait_closed()
        assert stream.close_code == 1009


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"\x00" * LIMIT, id="binary"),
        pytest.param("é" * (LIMIT // 2), id="multibyte-text"),
        pytest.param("x" * LIMIT, id="ascii-text"),
    ],
)
async def test_a_message_exactly_at_the_limit_is_accepted(
    plain_uvicorn_app: LiveApp, open_stream: StreamFactory, message: str | bytes
) -> None:
    size = len(message.encode()) if isinstance(message, str) else len(message)
    assert size == LIMIT
    async with open_stream(plain_uvicorn_app) as stream:
        await stream.wait_for(lambda s: len(s.audio_received) > 0)
        await stream.send_raw(message)
        # Skipped as malformed, not fatal: the echo keeps coming on the same socket.
        after = len(stream.audio_received) + 10
        await stream.wait_for(lambda s: len(s.audio_received) >= after or s.closed)
        assert not stream.closed


async def test_invalid_utf8_text_closes_1007_with_one_warning(
    echo_app: LiveApp, signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    call_id = f"call-{uuid.uuid4()}"
    headers = {"x-ms-call-connection-id": call_id, "Authorization": f"Bearer {signer.mint()}"}
    async with connect(ws_url(echo_app), additional_headers=headers) as socket:
        await socket.send(b'{"kind":"AudioData","x":"\xc3\x28"}', text=True)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await socket.recv()
        assert socket.close_code == 1007

    def session_ended() -> bool:
        return any("media session ended" in r.getMessage() for r in caplog.records)

    async with asyncio.timeout(5):
        while not session_ended():  # noqa: ASYNC110 (log records: nothing to await on)
            await asyncio.sleep(0.01)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "UTF-8" in warning.getMessage()
    assert getattr(warning, "call_connection_id", None) == call_id
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
