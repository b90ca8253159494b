"""The bot shipped with the project (PIPECAT_BOT unset): a cascaded voice agent.

Silero VAD (Pipecat's, on onnxruntime) decides the turns; the caller's speech goes through
STT, the LLM (REALTIME_INSTRUCTIONS, with the bridge's tools) and TTS back to the call. With
REALTIME_GREETING it speaks first; a call continued on another instance starts from
`call.history` and does not greet again. It is an ordinary Pipecat bot: a file of your own
with the same `run_bot(transport, call)` replaces it (PIPECAT_BOT).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from openai import AsyncOpenAI
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMMessagesAppendFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.workers.runner import WorkerRunner

from app.backends.base import CallContext
from app.backends.pipecat.backend import Bot
from app.backends.pipecat.services import (
    EntraTokens,
    language_model,
    speech_to_text,
    text_to_speech,
)
from app.backends.pipecat.tools import register_call_tools
from app.backends.pipecat.transport import AcsTransport
from app.settings import Settings

# Silero runs at 16 kHz (or 8): the bundled bot takes the call at 16 kHz whatever its rate.
SAMPLE_RATE = 16000

CascadeBot = Callable[[AcsTransport, CallContext, Settings, EntraTokens | None], Awaitable[None]]


def bind_settings(
    bot: CascadeBot, settings: Settings, token_provider: EntraTokens | None = None
) -> Bot:
    """`bot` as a `run_bot(transport, call)`, with the app's settings and shared credential."""

    async def run(transport: AcsTransport, call: CallContext) -> None:
        await bot(transport, call, settings, token_provider)

    return run


async def run_bot(
    transport: AcsTransport,
    call: CallContext,
    settings: Settings,
    token_provider: EntraTokens | None = None,
) -> None:
    instructions = await _instructions(settings)
    stt = speech_to_text(settings, SAMPLE_RATE, token_provider)
    llm = language_model(settings, instructions, token_provider)
    tts = text_to_speech(settings, token_provider)
    schemas = register_call_tools(llm, transport)
    messages: list[LLMContextMessage] = []
    for role, text in call.history:
        if role == "agent":
            messages.append({"role": "assistant", "content": text})
        else:
            messages.append({"role": "user", "content": text})
    context = (
        LLMContext(messages, ToolsSchema(standard_tools=schemas))
        if schemas
        else LLMContext(messages)
    )
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=True),
        idle_timeout_secs=None,  # the bridge ends idle calls (MEDIA_IDLE_TIMEOUT_S)
    )

    async def connected(transport: AcsTransport, client: Any) -> None:
        if settings.realtime_greeting and not call.history:
            # A developer note, as the Realtime backends' greeting is a system item; the
            # persona stays the LLM's system instruction.
            greeting: LLMContextMessage = {
                "role": "developer",
                "content": f"Start the call now: {settings.realtime_greeting}",
            }
            await worker.queue_frame(LLMMessagesAppendFrame([greeting], run_llm=True))

    async def disconnected(transport: AcsTransport, client: Any) -> None:
        await worker.cancel()

    transport.add_event_handler("on_client_connected", connected)
    transport.add_event_handler("on_client_disconnected", disconnected)
    runner = WorkerRunner(handle_sigint=False)
    try:
        await runner.add_workers(worker)
        await runner.run()
    finally:
        await _close_clients(stt, llm, tts)


async def _close_clients(*services: object) -> None:
    """Pipecat's OpenAI services never close their SDK clients (and their connection pools):
    close them with the call, not whenever the garbage collector gets to them."""
    for service in services:
        client = getattr(service, "_client", None)
        if isinstance(client, AsyncOpenAI):
            await client.close()


async def _instructions(settings: Settings) -> str:
    path = settings.realtime_instructions_file
    if path is None:
        return settings.realtime_instructions
    return (await asyncio.to_thread(path.read_text, "utf-8")).strip()
