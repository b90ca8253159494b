"""The backend checks against local stand-ins: the fake Realtime service (OpenAI's protocol
and Voice Live's), refusing or accepting, and a downstream WebSocket service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from app.doctor.backend import check_backend
from app.doctor.http import open_clients
from app.doctor.report import CheckResult, Status
from app.settings import Settings
from tests.backends.realtime.fake_server import fake_realtime


async def checked(**settings: object) -> CheckResult:
    async with open_clients() as clients:
        return await check_backend(Settings(_env_file=None, **settings), clients)  # type: ignore[arg-type]


async def test_a_refused_openai_key_is_a_fail_naming_the_setting() -> None:
    async with fake_realtime() as fake:
        fake.refuse_status = 401
        result = await checked(
            media_backend="openai",
            openai_api_key="sk-refused",
            openai_base_url=fake.openai_base_url,
        )
    assert result.status is Status.FAIL
    assert "HTTP 401" in result.saw
    assert result.fix is not None
    assert "OPENAI_API_KEY" in result.fix


async def test_an_accepted_openai_key_passes_with_the_session_created() -> None:
    async with fake_realtime() as fake:
        result = await checked(
            media_backend="openai", openai_api_key="sk-fine", openai_base_url=fake.openai_base_url
        )
        handshake = fake.handshakes[0]
    assert result.status is Status.PASS, result
    assert "session.created" in result.saw
    assert handshake.headers["Authorization"] == "Bearer sk-fine"


async def test_a_refused_voice_live_key_is_a_fail_naming_the_setting() -> None:
    async with fake_realtime("voice-live") as fake:
        fake.refuse_status = 401
        result = await checked(
            media_backend="voice-live",
            azure_voicelive_endpoint=fake.voicelive_endpoint,
            azure_voicelive_api_key="refused",
        )
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "AZURE_VOICELIVE_API_KEY" in result.fix


@pytest.fixture
async def downstream() -> AsyncIterator[str]:
    """A downstream WebSocket service that wants `?token=good`."""

    def check_token(connection: ServerConnection, request: Request) -> Response | None:
        if not request.path.endswith("token=good"):
            return connection.respond(401, "bad token\n")
        return None

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=check_token) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/call"


async def test_the_downstream_upgrade_with_its_token_passes(downstream: str) -> None:
    result = await checked(media_backend="websocket", backend_ws_url=downstream + "?token=good")
    assert result.status is Status.PASS


async def test_a_downstream_refusing_the_token_fails(downstream: str) -> None:
    result = await checked(media_backend="websocket", backend_ws_url=downstream + "?token=bad")
    assert result.status is Status.FAIL
    assert "HTTP 401" in result.saw
    assert "token=" not in result.saw  # the token stays out of the report


async def test_a_recordings_dir_that_cannot_be_written_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = await checked(media_backend="recorder", recordings_dir=blocker / "recordings")
    assert result.status is Status.FAIL
    assert result.fix is not None
    assert "RECORDINGS_DIR" in result.fix


async def test_a_key_refused_by_an_error_event_after_the_upgrade_is_a_fail() -> None:
    async def refuse_with_an_event(connection: ServerConnection) -> None:
        error = {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": "Incorrect API key provided.",
        }
        await connection.send(json.dumps({"type": "error", "event_id": "e1", "error": error}))
        await connection.wait_closed()

    async with serve(refuse_with_an_event, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        result = await checked(
            media_backend="openai",
            openai_api_key="sk-refused",
            openai_base_url=f"http://127.0.0.1:{port}/v1",
        )
    assert result.status is Status.FAIL
    assert "invalid_api_key" in result.saw
    assert result.fix is not None
    assert "OPENAI_API_KEY" in result.fix


async def test_a_pipecat_bot_file_that_imports_passes() -> None:
    result = await checked(
        media_backend="pipecat", pipecat_bot="examples/pipecat/echo_bot.py:run_bot"
    )
    assert result.status is Status.PASS, result
    assert "echo_bot.py:run_bot" in result.saw


async def test_a_pipecat_bot_file_that_raises_on_import_fails_with_the_reason(
    tmp_path: Path,
) -> None:
    bot = tmp_path / "broken_bot.py"
    bot.write_text("import no_such_module_here\n\nasync def run_bot(transport, call):\n    pass\n")
    result = await checked(media_backend="pipecat", pipecat_bot=f"{bot}:run_bot")
    assert result.status is Status.FAIL
    assert "no_such_module_here" in result.saw
    assert result.fix is not None
