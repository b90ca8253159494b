"""The production install (no dev group, as the Dockerfile builds it) imports and serves.

The suite itself runs with the dev group installed, so a runtime import of a dev-only package
passes every other test while the container crash-loops. These tests build the locked runtime
environment on its own and run the service from it the way users do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("pyproject.toml", "uv.lock", "README.md", "app")
# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

# Every module of the package, imported one by one, so one failure does not hide the others.
IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
import app

# Modules of an optional extra (pyproject's optional-dependencies) import only with it.
OPTIONAL = {"app.backends.pipecat": "pipecat"}
failed = []
for module in pkgutil.walk_packages(app.__path__, "app."):
    extra = next((x for p, x in OPTIONAL.items() if module.name.startswith(p)), None)
    if extra is not None and importlib.util.find_spec(extra) is None:
        continue
    try:
        importlib.import_module(module.name)
    except Exception as exc:
        failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def uv_command() -> str:
    """The uv that runs this suite (`uv run` sets UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to build the production environment (./scripts/test has it)")
    return found


@pytest.fixture(scope="module")
def production_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with its runtime environment installed: `uv sync --no-dev`."""
    project = tmp_path_factory.mktemp("production")
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(project / ".venv")}
    env.pop("VIRTUAL_ENV", None)
    synced = subprocess.run(  # noqa: S603 - our own uv, fixed arguments
        [uv_command(), "sync", "--locked", "--no-dev", "--no-editable", "--quiet"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert synced.returncode == 0, synced.stderr
    return project


def runtime_env(project: Path, **settings: str) -> dict[str, str]:
    """A clean environment: no settings but `settings`, nothing from the suite's own venv."""
    env = {
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(project),
        "LANG": "C.UTF-8",
    }
    env.update(settings)
    return env


def test_the_production_install_has_no_dev_packages(production_env: Path) -> None:
    python = production_env / ".venv" / "bin" / "python"
    for dev_only in ("pytest", "hypothesis", "playwright", "schemathesis", "mypy"):
        probe = subprocess.run(  # noqa: S603
            [str(python), "-c", f"import {dev_only}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"{dev_only} is installed without the dev group"


def test_every_module_imports_without_the_dev_group(production_env: Path) -> None:
    python = production_env / ".venv" / "bin" / "python"
    imported = subprocess.run(  # noqa: S603
        [str(python), "-c", IMPORT_ALL],
        cwd=production_env,
        env=runtime_env(production_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, f"modules that fail to import:\n{imported.stdout}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# The two ways users start it: our command, and the app object that uvicorn, gunicorn and App
# Service's Python startup load.
START_COMMANDS = {
    "acs-bridge serve": ["acs-bridge", "serve"],
    "uvicorn app.main:app": ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}"],
}


@dataclass
class Served:
    process: subprocess.Popen[str]
    base_url: str
    by_uvicorn: bool  # started as `uvicorn app.main:app`


@pytest.fixture(params=sorted(START_COMMANDS))
def served(request: pytest.FixtureRequest, production_env: Path) -> Iterator[Served]:
    """The service from the production install, no ACS settings (embedded emulator)."""
    port = free_port()
    command = [part.format(port=port) for part in START_COMMANDS[request.param]]
    process = subprocess.Popen(  # noqa: S603
        [str(production_env / ".venv" / "bin" / command[0]), *command[1:]],
        cwd=production_env,
        env=runtime_env(production_env, PORT=str(port), HOST="127.0.0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base_url)
        yield Served(process, base_url, by_uvicorn=command[0] == "uvicorn")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def wait_healthy(process: subprocess.Popen[str], base_url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the service exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("the service did not answer /healthz in time")


def test_serve_answers_and_streams_a_test_call(served: Served) -> None:
    base_url = served.base_url
    with httpx.Client(base_url=base_url, timeout=10) as api:
        placed = api.post("/api/emulator/calls", json={"caller": "+14255550123"})
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_connection_id"]
        record = wait_for_frames(api, call_id)
    assert record["connection_state"] == "connected"
    assert record["media_state"] == "active"


def test_sigterm_with_a_live_call_and_an_open_console_exits_0_quickly(
    served: Served,
) -> None:
    process, base_url = served.process, served.base_url
    with (
        httpx.Client(base_url=base_url, timeout=10) as api,
        api.stream("GET", "/api/events") as console_stream,
    ):
        assert console_stream.status_code == 200
        placed = api.post("/api/emulator/calls", json={})
        wait_for_frames(api, placed.json()["call_connection_id"])
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        elapsed = time.monotonic() - started
    # docker stop waits 10 s before SIGKILL; App Service similar. Stopping must be prompt.
    assert elapsed < 5, f"stopping took {elapsed:.1f} s"
    if served.by_uvicorn:
        # uvicorn re-raises the signal after its graceful shutdown (as PID 1 in a container the
        # kernel ignores it and the exit code is 0).
        assert code in (0, -signal.SIGTERM)
    else:
        assert code == 0


def test_secrets_in_request_urls_never_reach_the_log(
    served: Served,
) -> None:
    process, base_url = served.process, served.base_url
    secret = "s3cr3t-eventgrid-code"
    refused = httpx.post(f"{base_url}/api/incomingCall?code={secret}", json=[], timeout=10)
    assert refused.status_code == 401
    httpx.get(f"{base_url}/healthz?api-key={secret}", timeout=10)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    assert process.stdout is not None
    output = process.stdout.read()
    if served.by_uvicorn:
        # uvicorn's access log is on by default there: the line is written, masked.
        assert "POST /api/incomingCall?code=*** " in output
    assert secret not in output


def wait_for_frames(api: httpx.Client, call_id: str, timeout_s: float = 15) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    record: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = api.get(f"/api/calls/{call_id}")
        if response.status_code == 200:
            record = response.json()
            media = record.get("media")
            if isinstance(media, dict) and media.get("frames_in", 0) > 0:
                return record
        time.sleep(0.1)
    pytest.fail(f"no media frames for the test call: {record}")


def test_a_setting_that_cannot_work_refuses_startup_in_one_line(production_env: Path) -> None:
    acs = "endpoint=https://example.communication.azure.com/;accesskey=a2V5"
    for command in (["acs-bridge", "serve"], ["uvicorn", "app.main:app"]):
        refused = subprocess.run(  # noqa: S603
            [str(production_env / ".venv" / "bin" / command[0]), *command[1:]],
            cwd=production_env,
            env=runtime_env(production_env, ACS_CONNECTION_STRING=acs),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0, command
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"{command}: not one line:\n{refused.stderr}"
        assert "PUBLIC_BASE_URL" in lines[0]
        assert "Traceback" not in refused.stderr


def test_pipecat_without_its_extra_refuses_startup_saying_how_to_install_it(
    production_env: Path,
) -> None:
    for command in (["acs-bridge", "serve"], ["uvicorn", "app.main:app"]):
        refused = subprocess.run(  # noqa: S603
            [str(production_env / ".venv" / "bin" / command[0]), *command[1:]],
            cwd=production_env,
            env=runtime_env(production_env, MEDIA_BACKEND="pipecat", OPENAI_API_KEY="sk-unused"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0, command
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"{command}: not one line:\n{refused.stderr}"
        assert "uv sync --extra pipecat" in lines[0]
