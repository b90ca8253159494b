"""SIGHUP re-reads AGENTS_FILE in `acs-bridge serve` as users run it: a valid file replaces
the agents, an invalid one is logged and changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.server import bind_socket
from tests.agents.conftest import SALES, SUPPORT


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    sock = bind_socket()
    port = sock.getsockname()[1]
    sock.close()
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps({"agents": {"sales": {}}, "routes": {SALES: "sales"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACS_", "MEDIA_", "PUBLIC_"))}
    env.update(
        PYTHONPATH=str(Path(__file__).parents[2]),
        PORT=str(port),
        HOST="127.0.0.1",
        AGENTS_FILE=str(agents),
        RECORDINGS_DIR=str(tmp_path / "rec"),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _ready(base_url))
        yield process, base_url, agents
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def until(condition: Callable[[], Any], attempts: int = 300) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("never happened")


def test_sighup_reloads_a_valid_file_and_keeps_the_agents_on_an_invalid_one(
    serving: tuple[subprocess.Popen[str], str, Path],
) -> None:
    process, base_url, agents = serving

    def version() -> int:
        listed: int = httpx.get(f"{base_url}/api/agents", timeout=5).json()["version"]
        return listed

    assert version() == 1
    lines = {"agents": {"sales": {}, "support": {}}, "routes": {SALES: "sales", SUPPORT: "support"}}
    agents.write_text(json.dumps(lines))
    process.send_signal(signal.SIGHUP)
    until(lambda: version() == 2)
    assert httpx.get(f"{base_url}/api/agents").json()["routes"][SUPPORT] == "support"

    output: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
    reader.start()
    agents.write_text('{"agents": {"sales": {"port": 1}}}')
    process.send_signal(signal.SIGHUP)
    refused = "SIGHUP: agents not reloaded, the previous ones stay: AGENTS_FILE: agent 'sales'"
    until(lambda: any(refused in line for line in output))
    assert version() == 2
