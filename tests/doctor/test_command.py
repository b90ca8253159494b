"""The `acs-bridge doctor` command as a user runs it: settings from the environment, one line
per check or `--json`, exit 0 when nothing failed, 1 otherwise; `--start` serves the app."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from app.emulator import AcsEmulator
from app.server import bind_socket
from tests.conftest import CONTROL_API_KEY, EVENTGRID_SECRET, LiveApp
from tests.doctor.conftest import PublicAppFactory
from tests.doctor.tls_proxy import LocalCA


async def doctor(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "doctor",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def service_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The process environment of a deployment: these settings, none inherited, no `.env`
    (the command runs in `tmp_path`)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")
    }
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    env.update({key.upper(): value for key, value in settings.items()})
    return env


def live_env(tmp_path: Path, live: LiveApp, ca: LocalCA, **extra: str) -> dict[str, str]:
    settings = live.settings
    assert settings.acs_connection_string is not None
    assert settings.acs_resource_id is not None
    values = {
        "public_base_url": str(settings.public_base_url),
        "acs_connection_string": settings.acs_connection_string.get_secret_value(),
        "acs_resource_id": settings.acs_resource_id,
        "eventgrid_secret": EVENTGRID_SECRET,
        "control_api_key": CONTROL_API_KEY,
        "ssl_cert_file": str(ca.ca_file),
    }
    return service_env(tmp_path, **{**values, **extra})


async def test_doctor_exits_0_on_the_happy_path_and_prints_one_line_per_check(
    start_public_app: PublicAppFactory, trust_test_ca: LocalCA, tmp_path: Path
) -> None:
    async with start_public_app() as live:
        code, out, err = await doctor(env=live_env(tmp_path, live, trust_test_ca), cwd=tmp_path)
    assert code == 0, out + err
    assert out.startswith("PASS  settings.security")
    assert "PASS  public.url" in out
    assert "PASS  public.websocket" in out
    assert "FAIL" not in out


async def test_doctor_json_names_the_failure_and_exits_1(
    start_public_app: PublicAppFactory, trust_test_ca: LocalCA, tmp_path: Path
) -> None:
    async with start_public_app() as live:
        env = live_env(tmp_path, live, trust_test_ca, eventgrid_secret="not-the-services")
        code, out, err = await doctor("--json", env=env, cwd=tmp_path)
    assert code == 1, out + err
    document = json.loads(out)
    assert document["ok"] is False
    statuses = {check["name"]: check["status"] for check in document["checks"]}
    assert statuses["eventgrid.handshake"] == "FAIL"
    assert statuses["eventgrid.auth"] == "PASS"
    instructions = document["instructions"]
    assert any("az eventgrid event-subscription create" in line for line in instructions)


async def test_doctor_without_trust_in_the_ca_fails_the_certificate_check(
    start_public_app: PublicAppFactory, trust_test_ca: LocalCA, tmp_path: Path
) -> None:
    async with start_public_app() as live:
        env = live_env(tmp_path, live, trust_test_ca)
        del env["SSL_CERT_FILE"]
        code, out, _ = await doctor(env=env, cwd=tmp_path)
    assert code == 1
    assert "FAIL  public.tls" in out
    assert "SSL_CERT_FILE" in out


async def test_doctor_start_serves_the_app_while_it_checks(
    emulator: AcsEmulator, tmp_path: Path
) -> None:
    sock = bind_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = service_env(
        tmp_path,
        host="127.0.0.1",
        port=str(port),
        public_base_url=f"http://127.0.0.1:{port}",
        allow_insecure_development="true",
        acs_connection_string=emulator.connection_string,
        acs_resource_id=emulator.resource_id or "",
        acs_jwks_url=f"{emulator.endpoint}/calling/keys",
        eventgrid_secret=EVENTGRID_SECRET,
        control_api_key=CONTROL_API_KEY,
    )
    code, out, err = await doctor("--start", env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert "WARN  public.url" in out  # plain http, allowed for development only
    assert "PASS  public.identity" in out
    assert "PASS  acs.credentials" in out
