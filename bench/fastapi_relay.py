"""A reference point between the floor and the service: the floor's relay as a bare FastAPI
WebSocket route, served with the service's own uvicorn settings (`app.server.uvicorn_config`).

    uv run python -m bench.fastapi_relay --port 8766

The gap floor -> this relay is what the framework and ASGI server cost per frame; the gap
this relay -> service is what the service's own media path adds.
"""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from app.server import uvicorn_config


def create_relay_app() -> FastAPI:
    """A FastAPI app whose `/ws` echoes each AudioData's data in ACS's outbound shape."""
    relay_app = FastAPI()

    @relay_app.websocket("/ws")
    async def relay(ws: WebSocket) -> None:
        await ws.accept()
        loads, dumps = json.loads, json.dumps
        try:
            while True:
                message = await ws.receive_text()
                try:
                    parsed = loads(message)
                    if parsed.get("kind") != "AudioData":
                        continue
                    data = parsed["audioData"]["data"]
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                await ws.send_text(
                    dumps({"Kind": "AudioData", "AudioData": {"Data": data}, "StopAudio": None})
                )
        except WebSocketDisconnect:
            return

    return relay_app


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.fastapi_relay`: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="bench.fastapi_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    config = uvicorn_config(create_relay_app(), args.host, args.port)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
