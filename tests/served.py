"""`acs-bridge serve` as users run it, in a subprocess on a free port, on the embedded
emulator: for the tests that signal the process itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.server import bind_socket

ROOT = Path(__file__).parents[1]


@contextmanager
def served(tmp_path: Path, **settings: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The running process (stdout and stderr merged, as text) and its base URL, once ready;
    `settings` go to its environment. Stopped afterwards if the test left it running."""
    sock = bind_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACS_", "MEDIA_", "PUBLIC_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PORT=str(port),
        HOST="127.0.0.1",
        RECORDINGS_DIR=str(tmp_path / "rec"),
        **settings,
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
        until(lambda: ready(base_url))
        yield process, base_url
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def until(condition: Callable[[], object], attempts: int = 300) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("never happened")
