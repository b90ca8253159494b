"""The body limit middleware on a real uvicorn server: size, chunked streams, slow bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket

from app.api import errors
from app.security.body_limit import DRAIN_MIN_BYTES, BodyLimitMiddleware
from app.server import RunningServer, serve_in_background

LIMIT = 1024
BODY_TIMEOUT_S = 0.3


def build_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=LIMIT, body_timeout_s=BODY_TIMEOUT_S)

    @app.post("/echo-length")
    async def echo_length(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.post("/json")
    async def parse_json(payload: list[int]) -> dict[str, int]:
        return {"items": len(payload)}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return app


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve_in_background(build_app()) as running:
        yield running


async def _raw_exchange(server: RunningServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` in one write and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


def _chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def _request_head(extra: str) -> bytes:
    return f"POST /echo-length HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


async def test_a_body_within_the_limit_passes(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/echo-length", content=b"x" * LIMIT)
    assert response.json() == {"length": LIMIT}


async def test_a_chunked_body_within_the_limit_passes(server: RunningServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * 200

    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/echo-length", content=chunks())
    assert response.json() == {"length": 800}


async def test_an_announced_content_length_over_the_limit_gets_413_without_the_body(
    server: RunningServer,
) -> None:
    # Only the head is sent: the server answers, waits for the body up to its timeout, closes.
    status, headers, body = await _raw_exchange(
        server, _request_head(f"Content-Length: {LIMIT + 1}\r\n")
    )
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_a_chunked_body_over_the_limit_gets_413(server: RunningServer) -> None:
    request = _request_head("Transfer-Encoding: chunked\r\n") + _chunked(*[b"z" * 300] * 5)
    status, _, body = await _raw_exchange(server, request)
    assert status == 413
    assert json.loads(body) == {
        "error": {"code": "payload_too_large", "message": f"request body exceeds {LIMIT} bytes"}
    }


# Far more than uvicorn reads ahead (64 KiB) and than the socket buffers hold: without the drain,
# the server closes on unread bytes and the client's read fails with a reset.
ONE_WRITE_BODY = 1024 * 1024


async def test_an_oversize_body_written_at_once_still_reads_its_413(server: RunningServer) -> None:
    request = _request_head(f"Content-Length: {ONE_WRITE_BODY}\r\n") + b"b" * ONE_WRITE_BODY
    status, headers, body = await _raw_exchange(server, request)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_an_oversize_chunked_body_written_at_once_still_reads_its_413(
    server: RunningServer,
) -> None:
    chunks = [b"c" * 16384] * (ONE_WRITE_BODY // 16384)
    request = _request_head("Transfer-Encoding: chunked\r\n") + _chunked(*chunks)
    status, headers, body = await _raw_exchange(server, request)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_a_refused_body_is_drained_only_so_far(server: RunningServer) -> None:
    # The 413 comes before any body byte; then the server reads at most DRAIN_MIN_BYTES of a
    # huge body and closes, well before the body timeout would at loopback speed.
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(_request_head(f"Content-Length: {1 << 40}\r\n"))
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 ")
        async with asyncio.timeout(BODY_TIMEOUT_S * 0.8):
            sent = await _write_until_closed(writer, 1 << 30)
        assert sent < DRAIN_MIN_BYTES + 32 * 1024 * 1024  # the drain plus socket buffers
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _write_until_closed(writer: asyncio.StreamWriter, cap: int) -> int:
    """Write zeros until the server closes the connection; how many bytes went out."""
    sent, chunk = 0, bytes(65536)
    try:
        while sent < cap:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        return sent
    raise AssertionError(f"the server read {sent} bytes without closing")


async def test_the_limit_holds_when_the_app_parses_json(server: RunningServer) -> None:
    # FastAPI turns a failing body read into its own 400; the client must still see 413.
    payload = json.dumps(list(range(400))).encode()
    request = (
        b"POST /json HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(payload)
    )
    status, _, _ = await _raw_exchange(server, request)
    assert status == 413


async def test_a_body_that_stalls_gets_408(server: RunningServer) -> None:
    # Half the body arrives, then nothing: the server gives up after BODY_TIMEOUT_S.
    request = _request_head("Content-Length: 100\r\n") + b"a" * 50
    status, headers, body = await _raw_exchange(server, request)
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "request_timeout"


async def test_websocket_traffic_is_not_touched(server: RunningServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.ws_base_url}/ws") as ws,
    ):
        await ws.send_str("m" * (LIMIT * 4))
        assert len(await ws.receive_str()) == LIMIT * 4
