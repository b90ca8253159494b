"""`acs-bridge demo`: one simulated call end to end, with no Azure account.

The service and the ACS emulator run in this process on free local ports. The emulator delivers
an IncomingCall, the service answers it through the real SDK, callbacks flow, the emulator's
media client streams a bundled speech recording into /ws, the chosen backend handles it, and the
demo stops streaming, hangs up and prints what happened.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from app.embedded_acs import embedded_acs
from app.emulator.media_client import MediaStream, StreamScript, bundled_speech
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.settings import Settings

STEP_TIMEOUT_S = 15.0


class DemoFailed(Exception):
    """A step of the demo did not happen in time, or answered an error."""


@dataclass
class DemoResult:
    call_connection_id: str = ""
    events: list[tuple[str, str]] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0
    latency_ms: list[float] = field(default_factory=list)
    recordings: list[Path] = field(default_factory=list)


async def run_demo(
    settings: Settings, *, seconds: float | None, out: TextIO = sys.stdout
) -> DemoResult:
    """Run the demo call; raises DemoFailed with a reason."""
    sock = bind_socket()
    port = sock.getsockname()[1]
    audio = bundled_speech(settings.sample_rate)
    if seconds is not None:
        audio = audio[: int(seconds * settings.sample_rate) * 2]
    script = StreamScript(audio=audio, loop=False)
    async with embedded_acs(
        settings, public_base_url=f"http://127.0.0.1:{port}", script=script
    ) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        started = time.time()
        async with (
            serve_in_background(app, sock=sock, settings=acs.settings) as server,
            httpx.AsyncClient(
                base_url=server.base_url, timeout=STEP_TIMEOUT_S, headers=_auth(acs.settings)
            ) as api,
        ):
            status = _Status(out)
            status.line("placing a simulated incoming call")
            placed = await api.post("/api/emulator/calls", json={"caller": "+14255550123"})
            _expect(placed, 201)
            call_id = placed.json()["call_connection_id"]
            await _wait(
                api,
                call_id,
                status,
                "answering",
                connection_state="connected",
                media_state="active",
            )
            stream = acs.media.streams.get(call_id)
            if stream is None:
                raise DemoFailed("the media stream did not start")
            total = len(audio) // (settings.sample_rate * 2 // 50)
            deadline = time.monotonic() + total * 0.02 + STEP_TIMEOUT_S
            while stream.frames_sent < total:
                if stream.closed:
                    await _expect_open(api, call_id, stream)
                    raise DemoFailed(
                        f"the service closed the media socket ({stream.close_code}): "
                        f"{stream.close_reason or 'no reason given'}"
                    )
                if time.monotonic() > deadline:
                    raise DemoFailed("the media stream stalled")
                status.line(_progress(stream, total))
                await asyncio.sleep(0.2)
            await _drain(stream, settings.media_backend)
            status.line(_progress(stream, total))
            await _expect_open(api, call_id, stream)
            _expect(await api.post(f"/api/calls/{call_id}/media/stop"), 202)
            await _wait(api, call_id, status, "stopping media", media_state="stopped")
            _expect(await api.delete(f"/api/calls/{call_id}"), 202)
            record = await _wait(
                api, call_id, status, "hanging up", connection_state="disconnected"
            )
            record = await _wait_media_closed(api, call_id)
            status.done()
            _expect_backend_ok(record)
        result = DemoResult(
            call_connection_id=call_id,
            events=[(e["time"], e["type"]) for e in record["recent_events"]],
            frames_in=record["media"]["frames_in"],
            frames_out=record["media"]["frames_out"],
            latency_ms=_echo_latency(stream),
            recordings=sorted(
                p for p in settings.recordings_dir.glob("*") if p.stat().st_mtime >= started - 1
            )
            if settings.media_backend == "recorder"
            else [],
        )
    if settings.media_backend == "recorder" and not any(
        p.suffix == ".wav" for p in result.recordings
    ):
        raise DemoFailed(f"no recording was written under {settings.recordings_dir}")
    _print_summary(result, settings, out)
    return result


async def _expect_open(api: httpx.AsyncClient, call_id: str, stream: MediaStream) -> None:
    # All audio may be sent before the close reaches the client: look again after streaming.
    if stream.closed and stream.close_code != 1000:
        # A backend that failed says why on the call's record (its failover ended the call);
        # the record is written behind, so it may take a moment to say so.
        failure = None
        for _ in range(10):
            failure = _backend_failure((await api.get(f"/api/calls/{call_id}")).json())
            if failure is not None:
                break
            await asyncio.sleep(0.05)
        raise DemoFailed(
            failure
            or (
                f"the service closed the media socket ({stream.close_code}): "
                f"{stream.close_reason or 'no reason given'}"
            )
        )


def _expect_backend_ok(record: dict[str, Any]) -> None:
    reason = record.get("media", {}).get("close_reason") or ""
    if reason.startswith("backend failed"):
        raise DemoFailed(f"the media backend failed: {reason}")


def _auth(settings: Settings) -> dict[str, str]:
    key = settings.control_api_key
    return {"X-API-Key": key.get_secret_value()} if key else {}


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise DemoFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )


async def _wait(
    api: httpx.AsyncClient, call_id: str, status: _Status, doing: str, **expected: str
) -> dict[str, Any]:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/api/calls/{call_id}")
        if response.status_code == 200:
            record = response.json()
            if all(record.get(k) == v for k, v in expected.items()):
                return record
            if record.get("media_state") == "failed":
                raise DemoFailed(f"media streaming failed: {record.get('media_failure')}")
            failure = _backend_failure(record)
            if failure is not None:
                raise DemoFailed(failure)  # the failover ends the call at once: no point waiting
            ended = record.get("connection_state") == "disconnected"
            if ended and expected.get("connection_state") != "disconnected":
                raise DemoFailed(f"the call ended while {doing}: {record.get('disconnect_reason')}")
        status.line(
            f"{doing}: {record.get('connection_state', '?')}, "
            f"media {record.get('media_state', '?')}"
        )
        await asyncio.sleep(0.05)
    raise DemoFailed(f"timed out {doing}: the call is {record}")


def _backend_failure(record: dict[str, Any]) -> str | None:
    """What the call's record says of a backend that failed, or None."""
    backend = record.get("backend") or {}
    if backend.get("state") != "failed":
        return None
    return (
        f"the {backend.get('name')} backend failed: {backend.get('detail')} "
        f"(the call was ended by {record.get('ended_by') or 'failover'})"
    )


async def _wait_media_closed(api: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for _ in range(100):
        record = (await api.get(f"/api/calls/{call_id}")).json()
        if not record["media"]["connected"]:
            break
        await asyncio.sleep(0.05)
    return record


async def _drain(stream: MediaStream, backend: str) -> None:
    # Give the last echoed frames time to come back before streaming stops.
    if backend != "echo":
        return
    for _ in range(50):
        if len(stream.audio_received) >= stream.frames_sent:
            return
        await asyncio.sleep(0.02)


def _progress(stream: MediaStream, total: int) -> str:
    sent, back = stream.frames_sent, len(stream.audio_received)
    latency = _echo_latency(stream)
    rtt = f" · round trip {statistics.median(latency):.1f} ms" if latency else ""
    return (
        f"streaming {sent * 0.02:4.1f}/{total * 0.02:.1f} s · frames sent {sent} · "
        f"returned {back}{rtt}"
    )


def _echo_latency(stream: MediaStream) -> list[float]:
    received = stream.audio_received
    count = min(len(received), len(stream.sent_at))
    return [(received[i].at - stream.sent_at[i]) * 1000 for i in range(count)]


def _print_summary(result: DemoResult, settings: Settings, out: TextIO) -> None:
    write = out.write
    write("\nDemo call complete\n")
    write(f"  call connection id : {result.call_connection_id}\n")
    write(f"  backend            : {settings.media_backend}\n")
    write("  state changes      :\n")
    for at, kind in sorted(result.events):
        write(f"    {at[11:23]}  {kind}\n")
    write(f"  frames in / out    : {result.frames_in} / {result.frames_out}\n")
    if result.latency_ms:
        ordered = sorted(result.latency_ms)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        write(
            f"  round-trip latency : p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(ordered)} frames)\n"
        )
    else:
        write("  round-trip latency : n/a (this backend plays nothing back)\n")
    for path in result.recordings:
        write(f"  recording          : {path}\n")


class _Status:
    """One live status line on a terminal; plain lines (at most one a second) elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = ""
        self._last_at = 0.0

    def line(self, text: str) -> None:
        if self._tty:
            self._out.write("\r\033[K" + text)
            self._out.flush()
        elif text != self._last and time.monotonic() - self._last_at >= 1.0:
            self._out.write(text + "\n")
            self._last_at = time.monotonic()
        self._last = text

    def done(self) -> None:
        if self._tty:
            self._out.write("\r\033[K")
        self._out.flush()
