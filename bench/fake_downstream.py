"""A downstream service for `MEDIA_BACKEND=websocket` that plays the caller back.

    uv run python -m bench.fake_downstream --port 9100 --token bench-token --marks /tmp/m.npy

For the `websocket` server of `bench.run` (`BACKEND_WS_URL=ws://127.0.0.1:<port>/agent`):
it speaks the bridge's wire format (docs/websocket-backend.md) as a real-time downstream does.
With `--token`, a handshake without `Authorization: Bearer <token>` is refused with 401. Each
binary frame of live caller audio is sent straight back as the audio to play; the frames
between `replay` and `live` (audio kept while the bridge connected) are skipped, as the format
advises a real-time downstream, so the echo does not stay behind the caller for the whole call.
Control messages are read and otherwise ignored.

Every frame that carries the load generator's byte marker (`ACSB`, call index, seq, at the
start of its PCM: bench.acs_frames) is timed when it arrived and when it went back; the rows
(call, seq, received, sent back) go to `--marks` on SIGUSR1 and at exit (bench.marker_latency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
import time
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bench.acs_frames import MAGIC, MARKER
from bench.marker_latency import write_marks


@dataclass
class DownstreamStats:
    """What the downstream handled over its life."""

    connections: int = 0
    refused: int = 0
    frames: int = 0
    replayed_skipped: int = 0
    controls: int = 0


@dataclass
class FakeDownstream:
    """The handshake check, the per-connection echo and the marker rows."""

    token: str | None = None
    stats: DownstreamStats = field(default_factory=DownstreamStats)
    marks: array[float] = field(default_factory=lambda: array("d"))

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a handshake without the bearer token (when one is configured)."""
        if self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}":
            return None
        self.stats.refused += 1
        return connection.respond(401, "bad token\n")

    async def handle(self, ws: ServerConnection) -> None:
        """One call: echo live audio, skip replayed audio, until the bridge closes."""
        stats, marks = self.stats, self.marks
        stats.connections += 1
        replaying = False
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, str):
                    stats.controls += 1
                    kind = _message_type(message)
                    if kind in ("replay", "live"):
                        replaying = kind == "replay"
                    continue
                if replaying:
                    stats.replayed_skipped += 1
                    continue
                received = time.monotonic()
                stats.frames += 1
                sent = time.monotonic()
                await ws.send(message)
                if message[:4] == MAGIC and len(message) >= MARKER.size:
                    _, call, seq = MARKER.unpack_from(message)
                    marks.extend((call, seq, received, sent))


def _message_type(message: str) -> str | None:
    try:
        decoded = json.loads(message)
    except ValueError:
        return None
    kind = decoded.get("type") if isinstance(decoded, dict) else None
    return kind if isinstance(kind, str) else None


@contextlib.asynccontextmanager
async def running_downstream(
    host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> AsyncIterator[tuple[Server, FakeDownstream]]:
    """Serve the downstream on the running loop for the block (`port=0`: a free port)."""
    fake = FakeDownstream(token)
    async with serve(
        fake.handle, host, port, process_request=fake.check, max_size=None, compression=None
    ) as server:
        yield server, fake


async def _serve_forever(
    host: str, port: int, token: str | None, marks_path: Path | None
) -> DownstreamStats:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with running_downstream(host, port, token) as (server, fake):
        if marks_path is not None:
            dump = functools.partial(write_marks, marks_path, fake.marks, 4)
            loop.add_signal_handler(signal.SIGUSR1, dump)
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"fake downstream listening on ws://{host}:{bound}/agent", flush=True)
        await stop
        if marks_path is not None:
            write_marks(marks_path, fake.marks, 4)
        return fake.stats


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.fake_downstream`: serve until SIGINT/SIGTERM, then print the counts."""
    parser = argparse.ArgumentParser(
        prog="bench.fake_downstream", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN")
    parser.add_argument("--marks", type=Path, help="write the markers seen here (SIGUSR1, exit)")
    args = parser.parse_args(argv)
    stats = uvloop.run(_serve_forever(args.host, args.port, args.token, args.marks))
    print(
        f"connections {stats.connections} (refused {stats.refused}), frames echoed "
        f"{stats.frames}, replayed frames skipped {stats.replayed_skipped}, "
        f"control messages {stats.controls}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
