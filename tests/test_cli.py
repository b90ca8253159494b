"""The `acs-bridge` command as a user runs it: help, version, where `serve` listens, what it
says at startup, and a port already in use."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.cli import listen_host, package_version
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"Listening on (\S+):(\d+); open the console at (\S+)")
ACS = "endpoint=https://example.communication.azure.com/;accesskey=a2V5"


def _env(**settings: str) -> dict[str, str]:
    """The suite's environment without any of the service's settings, plus `settings`."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return env


async def _run(*args: str, tmp_path: Path, **settings: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=_env(**settings),
        cwd=tmp_path,  # no .env there
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Serving:
    host: str
    port: int
    console_url: str
    log: list[str] = field(default_factory=list)


@asynccontextmanager
async def serving(tmp_path: Path, *args: str, **settings: str) -> AsyncIterator[Serving]:
    """`acs-bridge serve --port 0 ...` until it says where it listens; stopped afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        "0",
        *args,
        env=_env(**settings),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await process.stderr.readline()).decode()
                assert line, "serve exited before listening:\n" + "".join(log)
                log.append(line)
                found = LISTENING.search(line)
                if found:
                    break
        yield Serving(found.group(1), int(found.group(2)), found.group(3), log)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


async def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    code, out, _ = await _run("--version", tmp_path=tmp_path)
    assert code == 0
    assert out.strip() == f"acs-bridge {package_version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


async def test_help_says_what_it_is_where_settings_come_from_and_the_defaults(
    tmp_path: Path,
) -> None:
    code, out, _ = await _run("--help", tmp_path=tmp_path)
    assert code == 0
    assert "Azure Communication Services" in out
    assert "environment" in out
    assert ".env" in out
    code, serve_help, _ = await _run("serve", "--help", tmp_path=tmp_path)
    assert code == 0
    flat = " ".join(serve_help.split())
    assert "(default: PORT, else 8000)" in flat
    assert "127.0.0.1 with the embedded emulator and no CONTROL_API_KEY, else 0.0.0.0" in flat


async def test_a_port_in_use_refuses_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await _run("serve", "--port", str(port), tmp_path=tmp_path)
    assert code == 2
    assert err.splitlines() == [
        f"acs-bridge: cannot start: port {port} is already in use (127.0.0.1:{port}): stop "
        "what listens there, or choose another port with PORT=<port> or --port <port>"
    ]
    assert out == ""  # no emulator, no "Application startup complete"


async def test_a_host_that_is_no_address_refuses_in_one_line(tmp_path: Path) -> None:
    code, _, err = await _run(
        "serve", "--port", "0", tmp_path=tmp_path, HOST="no-such-host.invalid"
    )
    assert code == 2
    assert err.splitlines() == [
        "acs-bridge: cannot start: HOST 'no-such-host.invalid' is not an address or a known "
        "host name"
    ]


async def test_a_first_run_listens_on_loopback_and_prints_the_consoles_url(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as served, httpx.AsyncClient() as client:
        console = await client.get(served.console_url)
    assert served.host == "127.0.0.1"
    assert served.console_url == f"http://127.0.0.1:{served.port}/"
    assert console.status_code == 200
    assert "text/html" in console.headers["content-type"]
    assert not [line for line in served.log if "WARNING" in line and "CONTROL_API_KEY" in line]


async def test_every_interface_without_a_key_warns_once_and_shows_a_browsable_url(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, HOST="0.0.0.0") as served, httpx.AsyncClient() as client:
        assert (await client.get(served.console_url)).status_code == 200
    assert served.host == "0.0.0.0"
    assert served.console_url == f"http://127.0.0.1:{served.port}/"
    warnings = [line for line in served.log if "CONTROL_API_KEY" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert f"0.0.0.0:{served.port}" in warnings[0]


async def test_a_control_api_key_listens_on_every_interface_without_a_warning(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, CONTROL_API_KEY="k") as served:
        pass
    assert served.host == "0.0.0.0"
    assert not [line for line in served.log if "no CONTROL_API_KEY" in line]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "127.0.0.1"),
        ({"host": "10.1.2.3"}, "10.1.2.3"),
        ({"control_api_key": "k"}, "0.0.0.0"),
        (
            {
                "acs_connection_string": ACS,
                "public_base_url": "https://bridge.example.com",
            },
            "0.0.0.0",
        ),
    ],
)
def test_where_serve_listens_by_default(settings: dict[str, str], expected: str) -> None:
    assert listen_host(Settings(_env_file=None, **settings)) == expected  # type: ignore[arg-type]
