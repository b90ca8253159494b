"""Hostile request bodies on a live app: deeply nested JSON answers 400 and keeps the connection."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

import httpx
import pytest

from app.emulator import API_VERSION, AcsEmulator
from app.emulator.hmac_auth import sign_request
from app.security.signing import TokenSigner
from tests.conftest import CONTROL_API_KEY, EVENTGRID_SECRET, LiveApp


def _nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _deep_inside_an_event(depth: int) -> bytes:
    # A well-formed event whose data hides the nesting: parsing fails before any field is read.
    inner = b'[{"a":' * depth + b"0" + b"}]" * depth
    return b'[{"id":"e1","eventType":"Microsoft.Communication.IncomingCall","data":{"x":%s}}]' % (
        inner
    )


NESTED = {
    "arrays-3k": _nested_arrays(1500),
    "objects-3k": _nested_objects(600),
    "arrays-100k": _nested_arrays(50_000),
    "objects-100k": _nested_objects(20_000),
    "inside-an-event": _deep_inside_an_event(2000),
}


class RawHttp:
    """One keep-alive HTTP/1.1 connection: requests written by hand, answers read by length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        async with asyncio.timeout(10):
            raw_head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = raw_head.decode().rstrip("\r\n").split("\r\n")
            answer_headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines)
            }
            answer = await self.reader.readexactly(int(answer_headers["content-length"]))
        return int(status_line.split()[1]), answer_headers, answer


async def _connect(live: LiveApp) -> RawHttp:
    host, port = urlsplit(live.base_url).netloc.split(":")
    return RawHttp(*await asyncio.open_connection(host, int(port)))


@pytest.mark.parametrize("shape", list(NESTED))
@pytest.mark.parametrize("route", ["/api/incomingCall", "/api/callbacks"])
async def test_nested_json_on_a_webhook_is_400_and_the_connection_lives_on(
    live_app: LiveApp,
    signer: TokenSigner,
    caplog: pytest.LogCaptureFixture,
    route: str,
    shape: str,
) -> None:
    caplog.set_level(logging.WARNING)
    path = f"{route}?code={EVENTGRID_SECRET}"
    auth = {"Authorization": f"Bearer {signer.mint()}"}
    http = await _connect(live_app)
    try:
        status, headers, body = await http.post(path, NESTED[shape], auth)
        assert status == 400
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "invalid_event"
        assert headers.get("connection", "keep-alive") != "close"
        # The same connection serves the next delivery.
        status, _, body = await http.post(path, b"[]", auth)
        assert status == 200, body
    finally:
        http.writer.close()
        await http.writer.wait_closed()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("path", ["/api/calls", "/api/emulator/calls"])
async def test_nested_json_on_the_control_api_is_400(
    live_app: LiveApp, signer: TokenSigner, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.WARNING)
    auth = {"X-API-Key": CONTROL_API_KEY, "Authorization": f"Bearer {signer.mint()}"}
    http = await _connect(live_app)
    try:
        for payload in (_nested_arrays(50_000), _nested_objects(1000)):
            status, headers, body = await http.post(path, payload, auth)
            assert status == 400
            assert headers["content-type"] == "application/json"
            assert "error" in json.loads(body)
    finally:
        http.writer.close()
        await http.writer.wait_closed()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("signed", [False, True])
async def test_nested_json_to_the_emulator_is_refused_not_a_crash(
    emulator: AcsEmulator, signed: bool
) -> None:
    # The emulator records every body before checking its signature: nesting must not crash it.
    body = _nested_arrays(50_000)
    path = f"/calling/callConnections?api-version={API_VERSION}"
    host = urlsplit(emulator.endpoint).netloc
    headers = sign_request(emulator.access_key, "POST", path, host, body) if signed else {}
    async with httpx.AsyncClient(base_url=emulator.endpoint, timeout=10) as client:
        response = await client.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    assert response.status_code == (400 if signed else 401)
    assert "error" in response.json()
