"""URL settings that cannot work refuse startup in one line naming the setting, never a secret."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from app.settings import ConfigurationError, Settings, load_settings

WS_HINT = "use ws://host:port/path or wss://..."
REDIS_HINT = "use redis://[:password@]host:6379/0, rediss://... (TLS) or unix:///path/to/redis.sock"


def refusal(**values: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None, **values)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_websocket_backend_url_without_a_scheme_is_refused() -> None:
    message = refusal(media_backend="websocket", backend_ws_url="127.0.0.1:9100")
    assert message == f"BACKEND_WS_URL: '127.0.0.1:9100' is not a WebSocket URL: {WS_HINT}"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:9100/media", "'http://127.0.0.1:9100/media' is not a WebSocket URL"),
        ("localhost:9100", "'localhost:9100' is not a WebSocket URL"),
        ("ws:///media", "'ws:///media' has no host"),
        ("ws://127.0.0.1:99999/media", "'ws://127.0.0.1:99999/media' has a bad host or port"),
        ("ws://[::1/media", "'ws://[::1/media' has a bad host or port"),
    ],
)
def test_a_websocket_backend_url_needs_ws_or_wss_and_a_host(url: str, problem: str) -> None:
    assert refusal(backend_ws_url=url) == f"BACKEND_WS_URL: {problem}: {WS_HINT}"


@pytest.mark.parametrize(
    ("name", "url", "needs"),
    [
        ("openai_base_url", "127.0.0.1:8000/v1", "an http(s) or ws(s) URL: use https://host/v1"),
        ("azure_openai_endpoint", "res.openai.azure.com", "an http(s) URL: use https://<resource>"),
        ("azure_voicelive_endpoint", "ftp://res", "an http(s) URL: use https://<resource>"),
        ("public_base_url", "bridge.example.com", "an http(s) URL: use https://<the host ACS"),
        ("acs_endpoint", "x.communication.azure.com", "an http(s) URL: use https://<resource>"),
        ("acs_jwks_url", "keys.example/calling/keys", "an https URL: use https://host/path"),
    ],
)
def test_each_http_url_setting_names_itself_what_it_got_and_what_it_needs(
    name: str, url: str, needs: str
) -> None:
    assert refusal(**{name: url}).startswith(f"{name.upper()}: '{url}' is not {needs}")


@pytest.mark.parametrize(
    "name", ["azure_openai_endpoint", "azure_voicelive_endpoint", "public_base_url", "acs_endpoint"]
)
def test_an_http_url_setting_needs_a_host(name: str) -> None:
    assert refusal(**{name: "https:///path"}).startswith(
        f"{name.upper()}: 'https:///path' has no host"
    )


def test_a_quoted_url_loses_its_user_password_and_query() -> None:
    message = refusal(backend_ws_url="https://user:hunter2@ws.example/media?token=s3cret")
    assert message.startswith("BACKEND_WS_URL: 'https://***@ws.example/media' is not a WebSocket")
    assert "hunter2" not in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        # An Azure Cache for Redis connection string (StackExchange format), not a URL.
        ("bridge.redis.cache.windows.net:6380,password=hunter2,ssl=True", "no scheme"),
        ("http://:hunter2@redis.example:6379/0", "scheme 'http'"),
    ],
)
def test_a_redis_url_of_another_kind_is_refused_without_echoing_it(url: str, problem: str) -> None:
    message = refusal(redis_url=url)
    assert message == f"REDIS_URL: a value with {problem} is not a Redis URL: {REDIS_HINT}"
    assert "hunter2" not in message


def test_a_redis_url_needs_a_host() -> None:
    message = refusal(redis_url="redis://:hunter2@/0")
    assert message == f"REDIS_URL: a value with scheme 'redis' has no host: {REDIS_HINT}"


def test_jwks_over_plain_http_is_refused_unless_from_this_machine() -> None:
    message = refusal(acs_jwks_url="http://keys.example/calling/keys")
    assert message.startswith(
        "ACS_JWKS_URL: 'http://keys.example/calling/keys' is not an https URL: use https://"
    )
    for host in ("127.0.0.1:9", "localhost:9", "[::1]:9"):
        url = f"http://{host}/calling/keys"
        assert load_settings(_env_file=None, acs_jwks_url=url).acs_jwks_url == url


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("backend_ws_url", "ws://127.0.0.1:9100/media"),
        ("backend_ws_url", "wss://agent.example/media?token=t"),
        ("openai_base_url", "http://127.0.0.1:8000/v1"),
        ("openai_base_url", "wss://proxy.example/v1"),
        ("azure_openai_endpoint", "https://res.openai.azure.com"),
        ("azure_voicelive_endpoint", "http://127.0.0.1:9000"),
        ("public_base_url", "https://bridge.example.com"),
        ("acs_endpoint", "https://x.communication.azure.com"),
        ("acs_jwks_url", "https://acscallautomation.communication.azure.com/calling/keys"),
        ("redis_url", "rediss://:secret@bridge.redis.cache.windows.net:6380/0"),
        ("redis_url", "redis://127.0.0.1:6379"),
        ("redis_url", "unix:///run/redis/redis.sock"),
    ],
)
def test_urls_that_can_work_are_accepted(name: str, url: str) -> None:
    values = {"public_base_url": "https://bridge.example.com", name: url}
    load_settings(_env_file=None, **values)


def test_settings_copied_through_a_dump_stay_valid() -> None:
    # The demo and the embedded emulator re-validate a model_dump(): URL objects, SecretStr.
    settings = load_settings(
        _env_file=None, public_base_url="https://bridge.example.com", redis_url="redis://r:6379"
    )
    assert Settings.model_validate(settings.model_dump()).redis_url == settings.redis_url


async def run_cli(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """`acs-bridge serve` as installed, in `tmp_path` (no `.env`), with only `env` set."""
    clean = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "acs-bridge"),
        "serve",
        env={**clean, **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, [line for line in err.decode().splitlines() if line.strip()]


async def test_the_cli_refuses_a_websocket_url_without_a_scheme(tmp_path: Path) -> None:
    code, lines = await run_cli(
        tmp_path, MEDIA_BACKEND="websocket", BACKEND_WS_URL="127.0.0.1:9100", PORT="0"
    )
    assert code == 2, lines
    assert lines == [
        f"acs-bridge: cannot start: BACKEND_WS_URL: '127.0.0.1:9100' is not a WebSocket URL: "
        f"{WS_HINT}"
    ]


async def test_the_cli_refuses_a_tool_url_naming_the_tool(tmp_path: Path) -> None:
    tool = {
        "name": "crm_lookup",
        "description": "Look up the caller.",
        "parameters": {"type": "object", "properties": {}},
        "url": "crm.example/lookup?code=s3cret",
    }
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([tool]), encoding="utf-8")
    code, lines = await run_cli(tmp_path, AGENT_TOOLS_FILE=str(path), PORT="0")
    assert code == 2, lines
    assert lines == [
        f"acs-bridge: cannot start: AGENT_TOOLS_FILE {path}: tool 1 (crm_lookup): url "
        "'crm.example/lookup' is not an http(s) URL: use https://host/path"
    ]
