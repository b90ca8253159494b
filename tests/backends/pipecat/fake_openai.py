"""A local OpenAI-compatible server: chat completions (streamed), transcriptions and speech.

What it answers is scripted by the test: each chat request takes the next `Reply` (text and
tool calls), each transcription the next text; speech is a tone as long as the text asks for.
Every request is kept, so a test can tell what the bot sent and that it sent nothing more.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

SPEECH_RATE = 24000  # OpenAI's pcm format
SPEECH_MS_PER_CHAR = 40


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class FakeOpenAI:
    replies: deque[Reply] = field(default_factory=deque)
    transcripts: deque[str] = field(default_factory=deque)
    chats: list[dict[str, Any]] = field(default_factory=list)
    transcriptions: int = 0
    speeches: list[str] = field(default_factory=list)
    base_url: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Set: chat requests wait for it (the test lets the model answer once the call is up).
    hold: asyncio.Event | None = None

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    def _seen(self) -> None:
        self.changed.set()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.chats.append(body)
        self._seen()
        if self.hold is not None:
            await self.hold.wait()
        reply = self.replies.popleft() if self.replies else Reply("Okay.")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in _chunks(reply):
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def transcribe(self, request: web.Request) -> web.Response:
        await request.read()
        self.transcriptions += 1
        self._seen()
        text = self.transcripts.popleft() if self.transcripts else ""
        return web.json_response({"text": text})

    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = str(body.get("input", ""))
        self.speeches.append(text)
        self._seen()
        pcm = _tone(len(text) * SPEECH_MS_PER_CHAR / 1000.0)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for start in range(0, len(pcm), 4800):
            await response.write(pcm[start : start + 4800])
        await response.write_eof()
        return response


@asynccontextmanager
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_post("/v1/audio/transcriptions", fake.transcribe)
    app.router.add_post("/v1/audio/speech", fake.speech)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()


def _chunks(reply: Reply) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake",
            "choices": [choice],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    for word in reply.text.split(" ") if reply.text else ():
        chunks.append(chunk({"content": word + " "}))
    for index, call in enumerate(reply.tool_calls):
        function = {"name": call.name, "arguments": call.arguments}
        delta = {"index": index, "id": f"call_{index}", "type": "function", "function": function}
        chunks.append(chunk({"tool_calls": [delta]}))
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    return chunks


def _tone(seconds: float) -> bytes:
    t = np.arange(int(SPEECH_RATE * seconds)) / SPEECH_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 330.0 * t)).astype("<i2").tobytes()
