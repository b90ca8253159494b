"""The floor: the least a Python relay of ACS media can do, on websockets + uvloop.

    uv run python -m bench.floor_server --port 8765

For each inbound AudioData it parses the JSON and sends back the outbound-format AudioData
(`{"Kind":"AudioData","AudioData":{"Data":...},"StopAudio":null}`) with the same data; every
other message is parsed and dropped. No base64 decoding, no framing, no pacing: any real
relay does at least this much per frame, so its CPU per frame is the bar for the service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator

import uvloop
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def relay(ws: ServerConnection) -> None:
    """Echo each AudioData's data back in ACS's outbound shape until the socket closes."""
    loads, dumps, send = json.loads, json.dumps, ws.send
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            try:
                parsed = loads(message)
                if parsed.get("kind") != "AudioData":
                    continue
                data = parsed["audioData"]["data"]
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            await send(dumps({"Kind": "AudioData", "AudioData": {"Data": data}, "StopAudio": None}))


@contextlib.asynccontextmanager
async def running_floor(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Server]:
    """Serve the floor relay on the running loop; `port=0` picks a free port."""
    async with serve(relay, host, port) as server:
        yield server


def bound_port(server: Server) -> int:
    """The TCP port a running server listens on."""
    port: int = next(iter(server.sockets)).getsockname()[1]
    return port


async def _serve_forever(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with running_floor(host, port) as server:
        print(f"floor listening on ws://{host}:{bound_port(server)}/ws", flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.floor_server`: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="bench.floor_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    uvloop.run(_serve_forever(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
