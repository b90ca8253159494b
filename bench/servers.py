"""Starting the servers under test, each pinned to one core, and stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

# The service's settings for the benchmark: the echo backend, no Azure, no call limit in the
# way. Everything else stays at its production default (uvloop, httptools, INFO logs).
SERVICE_ENV: Final = {
    "MEDIA_BACKEND": "echo",
    "ECHO_DELAY_MS": "0",
    "MAX_CONCURRENT_CALLS": "100000",
    "ALLOW_INSECURE_DEVELOPMENT": "true",
}
# Only these are inherited, so no ACS_*, REDIS_URL or OPENAI_* of the caller's shell leaks in.
_INHERITED_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server to benchmark: its name and how to run it on a given port."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def command(self, port: int) -> list[str]:
        """The command line, without pinning."""
        args = [arg.replace("{port}", str(port)) for arg in self.args]
        return [sys.executable, "-m", self.module, *args]


SERVICE = ServerSpec(
    "service", "app.cli", ("serve", "--host", "127.0.0.1", "--port", "{port}"), SERVICE_ENV
)
FLOOR = ServerSpec("floor", "bench.floor_server", ("--host", "127.0.0.1", "--port", "{port}"))
FASTAPI_RELAY = ServerSpec(
    "fastapi", "bench.fastapi_relay", ("--host", "127.0.0.1", "--port", "{port}")
)
SERVERS: Final = {spec.name: spec for spec in (FLOOR, FASTAPI_RELAY, SERVICE)}


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server: its process id and media WebSocket URL."""

    name: str
    pid: int
    port: int
    core: int | None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class ServerStartError(RuntimeError):
    """The server exited or did not listen in time."""


@contextlib.contextmanager
def running_server(
    spec: ServerSpec, core: int | None, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Run `spec` pinned to `core` (taskset) until the block exits; output goes to `log_path`."""
    port = free_port()
    command = spec.command(port)
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env.update(spec.env)
    env.update(extra_env or {})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A scratch working directory, so the repository's `.env` cannot change the settings.
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as cwd,
        log_path.open("wb") as log,
    ):
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_listening(process, port, log_path)
            yield RunningServer(spec.name, process.pid, port, core)
        finally:
            _stop(process)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServerStartError(f"server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServerStartError(f"server did not listen on port {port} within {_READY_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
