"""A fake OpenAI Realtime service (GA protocol) that talks back as much as it hears.

    uv run python -m bench.fake_realtime --port 8766 --marks /tmp/marks.npy

For the `realtime` server of `bench.run`: the service under test runs with
`MEDIA_BACKEND=openai` and `OPENAI_BASE_URL=http://127.0.0.1:<port>/v1`. Every connection gets
`session.created`; `session.update` is answered with `session.updated`; and each
`input_audio_buffer.append` of N ms of 24 kHz caller audio is answered at once with that same
audio as one `response.output_audio.delta` of a single long response (the model says back
what it heard). Caller audio arrives at real time, so the model "speaks" at real time,
continuously: the service's outbound path runs at 50 frames/s per call. No VAD events are
sent, so there is no barge-in. `response.create` and `response.cancel` are acknowledged;
anything else is ignored.

The appended audio is decoded for the load generator's audio markers (bench.audio_markers):
each group's time of arrival and of its return, kept per marker and written (a numpy array
of rows: call code, number, received, sent back) to `--marks` on SIGUSR1 and at exit. Appends
the way the service sends them (`{"type":"input_audio_buffer.append","audio":"..."}`) are
sliced, not parsed, and their base64 goes back as it came. On SIGTERM it prints how many
appends and deltas it handled.

With `--dialect voice-live` it plays Azure Voice Live for `MEDIA_BACKEND=voice-live`
(`AZURE_VOICELIVE_ENDPOINT=http://127.0.0.1:<port>`): the preview name
`response.audio.delta`, and audio at the rate `session.update` asked for (the call's own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import signal
import sys
import time
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import uvloop
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.audio_markers import PulseDecoder
from bench.marker_latency import write_marks

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


def appended_audio(message: str) -> str | None:
    """The base64 audio of an `input_audio_buffer.append` message; None for any other."""
    if message.startswith(_APPEND_HEAD) and message.endswith(_APPEND_TAIL):
        return message[len(_APPEND_HEAD) : -len(_APPEND_TAIL)]
    if "input_audio_buffer.append" not in message:
        return None
    try:  # another client's spelling (spaces, key order): parse it
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "input_audio_buffer.append":
        return None
    audio = event.get("audio", "")
    return audio if isinstance(audio, str) else None


Dialect = Literal["ga", "voice-live"]
_VOICE_LIVE_RATES: Final = {"pcm16": 24000, "pcm16_16000hz": 16000, "pcm16_8000hz": 8000}


class FakeRealtime:
    """The fake service's connection handler and counters."""

    def __init__(self, dialect: Dialect = "ga") -> None:
        self.stats = FakeStats()
        self.dialect = dialect
        self.marks = array("d")  # (call code, number, received, sent back) per marker group

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
        decoder: PulseDecoder | None = None
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_SESSION_CREATED)
            async for message in ws:
                received = time.monotonic()
                text = message if isinstance(message, str) else message.decode()
                audio = appended_audio(text)
                if audio is None:
                    rate = await self._control(ws, text, response_id) or rate
                    continue
                stats.appends += 1
                if not speaking:
                    speaking = True
                    await ws.send(_event("response.created", response=_response(response_id)))
                seq += 1
                stats.deltas += 1
                sent = time.monotonic()
                await ws.send(f'{{"event_id":"ev_{seq}",{head}"delta":"{audio}"}}')
                # Decoded after the reply went out, so the markers cost the reply nothing.
                pcm = base64.b64decode(audio)
                stats.audio_bytes_in += len(pcm)
                if decoder is None:
                    decoder = PulseDecoder(rate)
                for code, number, (heard, said) in decoder.feed(pcm, (received, sent)):
                    self.marks.extend((code, number, heard, said))

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


async def _serve_forever(
    host: str, port: int, dialect: Dialect, marks_path: Path | None
) -> FakeStats:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with running_fake(host, port, dialect) as running:
        if marks_path is not None:
            dump = functools.partial(write_marks, marks_path, running.fake.marks, 4)
            loop.add_signal_handler(signal.SIGUSR1, dump)
        print(f"fake realtime listening on http://{host}:{running.port}/v1", flush=True)
        await stop
        if marks_path is not None:
            write_marks(marks_path, running.fake.marks, 4)
        return running.fake.stats


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.fake_realtime`: serve until SIGINT/SIGTERM, then print the counts."""
    parser = argparse.ArgumentParser(prog="bench.fake_realtime", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--dialect", choices=("ga", "voice-live"), default="ga")
    parser.add_argument("--marks", type=Path, help="write the markers seen here (SIGUSR1, exit)")
    args = parser.parse_args(argv)
    stats = uvloop.run(_serve_forever(args.host, args.port, args.dialect, args.marks))
    print(
        f"connections {stats.connections}, appends {stats.appends}, deltas {stats.deltas}, "
        f"caller audio {stats.audio_bytes_in / (MODEL_RATE * 2):.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
