"""Starting the servers under test, each pinned to one core, and stopping them."""

from __future__ import annotations

import contextlib
import dataclasses
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
from typing import Final, Literal

from bench.acs_frames import Markers

# The service's settings for the benchmark: the echo backend, no call limit in the way, an
# unreachable ACS resource and a public origin (so that it does not start its embedded ACS
# emulator), no ACS token check (the load generator cannot pass it), WARNING logs. Everything
# else stays at its production default (uvloop, httptools). `--service-env` overrides these.
SERVICE_ENV: Final = {
    "MEDIA_BACKEND": "echo",
    "ECHO_DELAY_MS": "0",
    "MAX_CONCURRENT_CALLS": "100000",
    "ACS_CONNECTION_STRING": "endpoint=http://127.0.0.1:9/;accesskey=QUJDRA==",
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    "ALLOW_INSECURE_DEVELOPMENT": "true",
    "LOG_LEVEL": "WARNING",
}
# The Realtime path: a 16 kHz call, a 24 kHz model (the service resamples both ways), served
# by bench.fake_realtime (OPENAI_BASE_URL is set per run to the fake's port).
REALTIME_ENV: Final = {
    **{k: v for k, v in SERVICE_ENV.items() if k != "ECHO_DELAY_MS"},
    "MEDIA_BACKEND": "openai",
    "MEDIA_AUDIO_FORMAT": "pcm16KMono",
    "OPENAI_API_KEY": "bench-key",
}
# Azure Voice Live on the same call: the call's own 16 kHz both ways (no resampling), served by
# bench.fake_realtime in its Voice Live dialect (AZURE_VOICELIVE_ENDPOINT set per run).
VOICELIVE_ENV: Final = {
    **{k: v for k, v in SERVICE_ENV.items() if k != "ECHO_DELAY_MS"},
    "MEDIA_BACKEND": "voice-live",
    "MEDIA_AUDIO_FORMAT": "pcm16KMono",
    "AZURE_VOICELIVE_API_KEY": "bench-key",
}
# The Pipecat path on the same call: the bridge's example echo bot (a bot file of one's own), and
# the bundled cascade (Silero VAD and Smart Turn on every call) against bench.fake_openai.
PIPECAT_ECHO_BOT: Final = Path(__file__).resolve().parent.parent / "examples/pipecat/echo_bot.py"
PIPECAT_ECHO_ENV: Final = {
    **{k: v for k, v in SERVICE_ENV.items() if k != "ECHO_DELAY_MS"},
    "MEDIA_BACKEND": "pipecat",
    "MEDIA_AUDIO_FORMAT": "pcm16KMono",
    "PIPECAT_BOT": f"{PIPECAT_ECHO_BOT}:run_bot",
}
PIPECAT_CASCADE_ENV: Final = {
    **{k: v for k, v in SERVICE_ENV.items() if k != "ECHO_DELAY_MS"},
    "MEDIA_BACKEND": "pipecat",
    "MEDIA_AUDIO_FORMAT": "pcm16KMono",
    "OPENAI_API_KEY": "bench-key",
}
# The websocket backend on the same call, relaying to bench.fake_downstream (BACKEND_WS_URL set
# per run), with a bearer token on the handshake as a deployment would have.
BENCH_WS_TOKEN: Final = "bench-token"  # noqa: S105 (a fake downstream on loopback)
WEBSOCKET_ENV: Final = {
    **{k: v for k, v in SERVICE_ENV.items() if k != "ECHO_DELAY_MS"},
    "MEDIA_BACKEND": "websocket",
    "MEDIA_AUDIO_FORMAT": "pcm16KMono",
    "BACKEND_WS_AUTH_TOKEN": BENCH_WS_TOKEN,
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
    app: bool = False  # the service (any revision): `--service-env` applies
    python: str | None = None  # the interpreter (None: this one); the baseline has its own
    # needs bench.fake_realtime running in this dialect (at OPENAI_BASE_URL for "ga", at
    # AZURE_VOICELIVE_ENDPOINT for "voice-live")
    # ("openai-http": bench.fake_openai, at OPENAI_BASE_URL; "downstream": bench.fake_downstream
    # at BACKEND_WS_URL)
    fake_realtime: Literal["ga", "voice-live", "openai-http", "downstream"] | None = None
    baseline: bool = False  # runs the `--baseline-rev` revision
    expect: Literal["echo", "audio", "listen"] = "echo"  # what the load generator gets back
    markers: Markers = "bytes"  # "audio" where the service resamples or the audio is a model's

    def command(self, port: int) -> list[str]:
        """The command line, without pinning."""
        args = [arg.replace("{port}", str(port)) for arg in self.args]
        return [self.python or sys.executable, "-m", self.module, *args]


_SERVE = ("serve", "--host", "127.0.0.1", "--port", "{port}")
_HOST_PORT = ("--host", "127.0.0.1", "--port", "{port}")
SERVICE = ServerSpec("service", "app.cli", _SERVE, SERVICE_ENV, app=True)
# The service of another git revision (bench.baseline sets `python` to its own venv's).
BASELINE = ServerSpec("baseline", "app.cli", _SERVE, SERVICE_ENV, app=True, baseline=True)
REALTIME = ServerSpec(
    "realtime",
    "app.cli",
    _SERVE,
    REALTIME_ENV,
    app=True,
    fake_realtime="ga",
    expect="audio",
    markers="audio",
)
# The Realtime path of the `--baseline-rev` revision, for before/after figures.
REALTIME_BASELINE = dataclasses.replace(REALTIME, name="realtime-baseline", baseline=True)
VOICELIVE = ServerSpec(
    "voicelive",
    "app.cli",
    _SERVE,
    VOICELIVE_ENV,
    app=True,
    fake_realtime="voice-live",
    expect="audio",
    markers="audio",
)
WEBSOCKET = ServerSpec(
    "websocket", "app.cli", _SERVE, WEBSOCKET_ENV, app=True, fake_realtime="downstream"
)
PIPECAT_ECHO = ServerSpec("pipecat-echo", "app.cli", _SERVE, PIPECAT_ECHO_ENV, app=True)
# The caller's tone is no speech to Silero: the cascade listens (VAD on every frame), no turns.
PIPECAT_CASCADE = ServerSpec(
    "pipecat-cascade",
    "app.cli",
    _SERVE,
    PIPECAT_CASCADE_ENV,
    app=True,
    fake_realtime="openai-http",
    expect="listen",
)
FLOOR = ServerSpec("floor", "bench.floor_server", _HOST_PORT)
FASTAPI_RELAY = ServerSpec("fastapi", "bench.fastapi_relay", _HOST_PORT)
FAKE_REALTIME = ServerSpec("fake-realtime", "bench.fake_realtime", _HOST_PORT)
FAKE_OPENAI = ServerSpec("fake-openai", "bench.fake_openai", _HOST_PORT)
FAKE_DOWNSTREAM = ServerSpec(
    "fake-downstream", "bench.fake_downstream", (*_HOST_PORT, "--token", BENCH_WS_TOKEN)
)


def fake_realtime_for(spec: ServerSpec, marks: Path | None = None) -> ServerSpec:
    """The fake that `spec` needs (bench.fake_realtime in its dialect, bench.fake_openai or
    bench.fake_downstream); with `marks`, the file it writes the markers it saw to."""
    if spec.fake_realtime == "openai-http":
        return FAKE_OPENAI
    if spec.fake_realtime == "downstream":
        fake, args = FAKE_DOWNSTREAM, FAKE_DOWNSTREAM.args
    else:
        fake, args = FAKE_REALTIME, (*FAKE_REALTIME.args, "--dialect", spec.fake_realtime or "ga")
    if marks is not None:
        args = (*args, "--marks", str(marks))
    return dataclasses.replace(fake, args=args)


def writes_marks(spec: ServerSpec) -> bool:
    """Whether `spec`'s fake times the markers (all but bench.fake_openai)."""
    return spec.fake_realtime not in (None, "openai-http")


def fake_realtime_env(spec: ServerSpec, port: int) -> dict[str, str]:
    """The settings that point `spec`'s backend at a fake on `port`."""
    if spec.fake_realtime == "voice-live":
        return {"AZURE_VOICELIVE_ENDPOINT": f"http://127.0.0.1:{port}"}
    if spec.fake_realtime == "downstream":
        return {"BACKEND_WS_URL": f"ws://127.0.0.1:{port}/agent"}
    return {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}


SERVERS: Final = {
    spec.name: spec
    for spec in (
        FLOOR,
        FASTAPI_RELAY,
        SERVICE,
        BASELINE,
        REALTIME,
        REALTIME_BASELINE,
        VOICELIVE,
        WEBSOCKET,
        PIPECAT_ECHO,
        PIPECAT_CASCADE,
    )
}


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
    spec: ServerSpec,
    core: int | None,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    cpus: set[int] | None = None,
) -> Iterator[RunningServer]:
    """Run `spec` pinned to `core` (taskset) until the block exits; output goes to `log_path`.

    `cpus` pins it to a set of cores instead (a helper beside the load generator)."""
    port = free_port()
    command = spec.command(port)
    if cpus:
        command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
    elif core is not None:
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
