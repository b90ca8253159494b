"""SIGHUP re-reads AGENTS_FILE in `acs-bridge serve` as users run it: a valid file replaces
the agents, an invalid one is logged and changes nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agents.conftest import SALES, SUPPORT
from tests.served import served, until


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps({"agents": {"sales": {}}, "routes": {SALES: "sales"}}))
    with served(tmp_path, AGENTS_FILE=str(agents)) as (process, base_url):
        yield process, base_url, agents


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
