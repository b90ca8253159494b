"""The first-run experience: `acs-bridge demo` and `serve` with the embedded emulator."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from app.server import bind_socket


async def _run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACS_", "MEDIA_", "PUBLIC_"))}
    env.update(
        PYTHONPATH=str(Path(__file__).parents[1]), RECORDINGS_DIR=str(tmp_path / "rec"), **extra
    )
    return env


async def test_demo_runs_a_call_end_to_end_and_summarises_it(tmp_path: Path) -> None:
    code, out, err = await _run("demo", "--seconds", "1", env=_env(tmp_path), cwd=tmp_path)
    assert code == 0, err
    assert re.search(r"call connection id : [0-9a-f-]{36}", out)
    for event in [
        "CallConnected",
        "MediaStreamingStarted",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]:
        assert event in out
    assert "frames in / out    : 50 / 50" in out
    assert re.search(r"round-trip latency : p50 \d+\.\d ms", out)


async def test_demo_with_the_recorder_says_where_the_recording_went(tmp_path: Path) -> None:
    code, out, err = await _run(
        "demo", "--backend", "recorder", "--seconds", "1", env=_env(tmp_path), cwd=tmp_path
    )
    assert code == 0, err
    wavs = list((tmp_path / "rec").glob("*.wav"))
    assert len(wavs) == 1
    assert f"recording          : {wavs[0]}" in out


@pytest.mark.parametrize("seconds", ["0.1", "1"])
async def test_demo_fails_with_a_clear_message(tmp_path: Path, seconds: str) -> None:
    # An unusable recordings directory (a file): the recorder cannot write, the demo must say so,
    # also when every frame was sent before the failure closed the media socket (0.1 s).
    (tmp_path / "rec").write_text("not a directory")
    code, out, err = await _run(
        "demo", "--backend", "recorder", "--seconds", seconds, env=_env(tmp_path), cwd=tmp_path
    )
    assert code != 0
    assert "demo failed: the recorder backend failed" in err  # at once, not after a time-out
    assert "Demo call complete" not in out


async def test_serve_without_acs_uses_the_embedded_emulator(tmp_path: Path) -> None:
    sock = bind_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = _env(tmp_path, CONTROL_API_KEY="k")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "k"}
        ) as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            placed = await client.post("/api/emulator/calls", json={})
            assert placed.status_code == 201, placed.text
            call_id = placed.json()["call_connection_id"]
            for _ in range(100):
                record = (await client.get(f"/api/calls/{call_id}")).json()
                if record["media"]["frames_in"] > 0 or record["media"]["connected"]:
                    break
                await asyncio.sleep(0.05)
            assert record["media"]["connected"] is True
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
