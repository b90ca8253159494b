"""A fake OpenAI-compatible HTTP service for the Pipecat cascade's bench run.

Transcriptions answer a short sentence, chat completions stream a short reply, speech is a
second of 24 kHz tone. Counts go to stdout when it stops (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import dataclass

import numpy as np
import uvloop
from aiohttp import web

SPEECH = (0.3 * 32767 * np.sin(2 * np.pi * 330.0 * np.arange(24000) / 24000)).astype("<i2")


@dataclass
class Counts:
    transcriptions: int = 0
    chats: int = 0
    speeches: int = 0


def app(counts: Counts) -> web.Application:
    async def transcribe(request: web.Request) -> web.Response:
        await request.read()
        counts.transcriptions += 1
        return web.json_response({"text": "What time do you open?"})

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        counts.chats += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta, finish in (
            ({"role": "assistant", "content": "We open at nine."}, None),
            ({}, "stop"),
        ):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [choice],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    async def speech(request: web.Request) -> web.Response:
        await request.read()
        counts.speeches += 1
        return web.Response(body=SPEECH.tobytes(), content_type="application/octet-stream")

    application = web.Application()
    application.router.add_post("/v1/audio/transcriptions", transcribe)
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_post("/v1/audio/speech", speech)
    return application


async def _serve_forever(host: str, port: int) -> Counts:
    counts = Counts()
    runner = web.AppRunner(app(counts))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return counts


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.fake_openai`: serve until SIGINT/SIGTERM, then print the counts."""
    parser = argparse.ArgumentParser(prog="bench.fake_openai", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args(argv)
    counts = uvloop.run(_serve_forever(args.host, args.port))
    print(
        f"transcriptions {counts.transcriptions}, chats {counts.chats}, speeches {counts.speeches}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
