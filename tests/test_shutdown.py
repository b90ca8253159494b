"""SIGTERM with live calls: readiness off and new calls refused at once, running calls go on
for SHUTDOWN_DRAIN_S, then end through the app's own path (1001, a reason), and the process
exits 0. `acs-bridge serve` as users run it, on the embedded emulator."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.served import served

DRAIN_S = 1.5


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with served(tmp_path, SHUTDOWN_DRAIN_S=str(DRAIN_S)) as running:
        yield running


def test_sigterm_drains_running_calls_then_ends_them_through_the_app(
    serving: tuple[subprocess.Popen[str], str],
) -> None:
    process, base_url = serving
    with httpx.Client(base_url=base_url, timeout=10) as api:
        call_id = api.post("/api/emulator/calls", json={}).json()["call_connection_id"]
        for _ in range(200):
            if api.get(f"/api/calls/{call_id}").json()["media"]["frames_in"] > 0:
                break
            time.sleep(0.05)
        frames_before = api.get(f"/api/calls/{call_id}").json()["media"]["frames_in"]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = api.get("/readyz")
        refused = api.post("/api/emulator/calls", json={})
        time.sleep(0.5)
        # Still within the drain: the call goes on streaming.
        record = api.get(f"/api/calls/{call_id}").json()
    code = process.wait(timeout=15)
    elapsed = time.monotonic() - started
    assert process.stdout is not None
    output = process.stdout.read()
    assert ready.status_code == 503
    assert ready.json()["checks"]["accepting_calls"] is False
    assert refused.status_code == 502  # the webhook answered 503 (Event Grid would retry)
    assert "503" in refused.json()["error"]["message"]
    assert record["media"]["connected"] is True
    assert code == 0
    assert DRAIN_S <= elapsed < DRAIN_S + 3.5
    ended = re.search(r"media session ended: server shutting down \(in (\d+),", output)
    assert ended is not None, output
    # The caller kept streaming through the drain: about 50 frames a second more.
    assert int(ended.group(1)) >= frames_before + 50 * DRAIN_S * 0.7
    assert "ACS closed the media socket" not in output
