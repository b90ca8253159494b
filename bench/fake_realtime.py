"""A fake OpenAI Realtime service (GA protocol) that talks back as much as it hears.

    uv run python -m bench.fake_realtime --port 8766

For the `realtime` server of `bench.run`: the service under test runs with
`MEDIA_BACKEND=openai` and `OPENAI_BASE_URL=http://127.0.0.1:<port>/v1`. Every connection gets
`session.created`; `session.update` is answered with `session.updated`; and each
`input_audio_buffer.append` of N ms of 24 kHz caller audio is answered at once with N ms of
24 kHz PCM (a tone) as one `response.output_audio.delta` of a single long response. Caller
audio arrives at real time, so the model "speaks" at real time, continuously, as much as it
hears: the service's outbound path runs at 50 frames/s per call. No VAD events are sent, so
there is no barge-in. `response.create` and `response.cancel` are acknowledged; anything
else is ignored.

Per message the fake does no JSON parsing and no base64 work for appends the way the service
sends them (`{"type":"input_audio_buffer.append","audio":"..."}`): the reply is pre-encoded
per append size. On SIGTERM it prints how many appends and deltas it handled.

With `--dialect voice-live` it plays Azure Voice Live for `MEDIA_BACKEND=voice-live`
(`AZURE_VOICELIVE_ENDPOINT=http://127.0.0.1:<port>`): the preview name
`response.audio.delta`, and audio at the rate `session.update` asked for (the call's own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import uvloop
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

MODEL_RATE: Final = 24000
_APPEND_HEAD: Final = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_TAIL: Final = '"}'
_SESSION_CREATED: Final = json.dumps(
    {
        "type": "session.created",
        "event_id": "event_created",
        "session": {"type": "realtime", "id": "sess_bench", "object": "realtime.session"},
    }
)


@dataclass
class FakeStats:
    """What the fake handled over its life."""

    connections: int = 0
    appends: int = 0
    deltas: int = 0
    audio_bytes_in: int = 0


def model_tone(nbytes: int, freq: float = 300.0, rate: int = MODEL_RATE) -> bytes:
    """`nbytes` of a sine tone as PCM16LE at `rate`: what the fake model says."""
    t = np.arange(nbytes // 2) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.3 * 32767).astype("<i2").tobytes()


def appended_bytes(message: str) -> int | None:
    """PCM bytes in an `input_audio_buffer.append` message; None for any other message."""
    if message.startswith(_APPEND_HEAD) and message.endswith(_APPEND_TAIL):
        b64_len = len(message) - len(_APPEND_HEAD) - len(_APPEND_TAIL)
        padding = message.count("=", len(message) - len(_APPEND_TAIL) - 2)
        return b64_len // 4 * 3 - padding
    if "input_audio_buffer.append" not in message:
        return None
    try:  # another client's spelling (spaces, key order): parse it
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "input_audio_buffer.append":
        return None
    return len(base64.b64decode(event.get("audio", "")))


class _Replies:
    """Pre-encoded audio delta bodies, one per append size and rate."""

    def __init__(self) -> None:
        self._b64: dict[tuple[int, int], str] = {}

    def delta(self, head: str, seq: int, nbytes: int, rate: int = MODEL_RATE) -> str:
        b64 = self._b64.get((nbytes, rate))
        if b64 is None:
            tone = model_tone(nbytes, rate=rate)
            b64 = self._b64[nbytes, rate] = base64.b64encode(tone).decode()
        return f'{{"event_id":"ev_{seq}",{head}"delta":"{b64}"}}'


Dialect = Literal["ga", "voice-live"]
_VOICE_LIVE_RATES: Final = {"pcm16": 24000, "pcm16_16000hz": 16000, "pcm16_8000hz": 8000}


class FakeRealtime:
    """The fake service's connection handler and counters."""

    def __init__(self, dialect: Dialect = "ga") -> None:
        self.stats = FakeStats()
        self.dialect = dialect
        self._replies = _Replies()

    async def handle(self, ws: ServerConnection) -> None:
        """One Realtime session: answer every append with as much audio, until it closes."""
        stats = self.stats
        stats.connections += 1
        n = stats.connections
        response_id, item_id = f"resp_bench_{n}", f"item_bench_{n}"
        delta = "response.output_audio.delta"
        if self.dialect == "voice-live":
            delta = "response.audio.delta"
        head = (
            f'"type":"{delta}","response_id":"{response_id}",'
            f'"item_id":"{item_id}","output_index":0,"content_index":0,'
        )
        speaking = False
        seq = 0
        rate = MODEL_RATE  # the session's audio; Voice Live's session.update may change it
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_SESSION_CREATED)
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                nbytes = appended_bytes(text)
                if nbytes is not None:
                    stats.appends += 1
                    stats.audio_bytes_in += nbytes
                    if not speaking:
                        speaking = True
                        await ws.send(_event("response.created", response=_response(response_id)))
                    seq += 1
                    stats.deltas += 1
                    await ws.send(self._replies.delta(head, seq, nbytes, rate))
                    continue
                rate = await self._control(ws, text, response_id) or rate

    async def _control(self, ws: ServerConnection, text: str, response_id: str) -> int | None:
        """Answer one control event; the session's new audio rate, if it set one."""
        try:
            event = json.loads(text)
        except ValueError:
            return None
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        rate = None
        if kind == "session.update":
            if self.dialect == "voice-live":
                requested = event.get("session", {}).get("output_audio_format", "pcm16")
                rate = _VOICE_LIVE_RATES.get(requested, MODEL_RATE)
            session = {**event.get("session", {}), "id": "sess_bench", "object": "realtime.session"}
            await ws.send(_event("session.updated", session=session))
        elif kind == "response.create":
            await ws.send(_event("response.created", response=_response("resp_created")))
            await ws.send(_event("response.done", response=_response("resp_created", "completed")))
        elif kind == "response.cancel":
            await ws.send(_event("response.done", response=_response(response_id, "cancelled")))
        return rate


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": f"event_{kind}", **fields})


def _response(response_id: str, status: str = "in_progress") -> dict[str, Any]:
    return {"id": response_id, "object": "realtime.response", "status": status, "output": []}


@dataclass(frozen=True, slots=True)
class RunningFake:
    """A serving fake: its server, counters and port."""

    server: Server
    fake: FakeRealtime

    @property
    def port(self) -> int:
        port: int = next(iter(self.server.sockets)).getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_fake(
    host: str = "127.0.0.1", port: int = 0, dialect: Dialect = "ga"
) -> AsyncIterator[RunningFake]:
    """Serve the fake on the running loop for the block (`port=0`: a free port)."""
    fake = FakeRealtime(dialect)
    async with serve(fake.handle, host, port, max_size=None, compression=None) as server:
        yield RunningFake(server, fake)


async def _serve_forever(host: str, port: int, dialect: Dialect) -> FakeStats:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with running_fake(host, port, dialect) as running:
        print(f"fake realtime listening on http://{host}:{running.port}/v1", flush=True)
        await stop
        return running.fake.stats


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.fake_realtime`: serve until SIGINT/SIGTERM, then print the counts."""
    parser = argparse.ArgumentParser(prog="bench.fake_realtime", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--dialect", choices=("ga", "voice-live"), default="ga")
    args = parser.parse_args(argv)
    stats = uvloop.run(_serve_forever(args.host, args.port, args.dialect))
    print(
        f"connections {stats.connections}, appends {stats.appends}, deltas {stats.deltas}, "
        f"caller audio {stats.audio_bytes_in / (MODEL_RATE * 2):.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
