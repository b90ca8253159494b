"""The tests' own Pipecat bots, each a `run_bot(transport, call)` as PIPECAT_BOT names one."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    LLMRunFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.workers.runner import WorkerRunner

from app.backends.base import CallContext
from app.backends.pipecat import AcsTransport, register_call_tools

BOT_RATE = 22050  # deliberately not the call's: the transport resamples
disconnected: list[str] = []  # calls whose on_client_disconnected fired
openai_base_url = ""  # the test's fake OpenAI-compatible server, for llm_bot


def tone(seconds: float, *, freq: float = 440.0, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(BOT_RATE * seconds)) / BOT_RATE
    samples = amplitude * 32767 * np.sin(2 * np.pi * freq * t)
    return samples.astype("<i2").tobytes()


def speech(seconds: float, amplitude: float = 0.3) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(tone(seconds, amplitude=amplitude), BOT_RATE, 1)


async def run(
    transport: AcsTransport, *processors: FrameProcessor, after: tuple[FrameProcessor, ...] = ()
) -> PipelineWorker:
    pipeline = Pipeline([transport.input(), *processors, transport.output(), *after])
    worker = PipelineWorker(pipeline, idle_timeout_secs=None)
    return worker


async def run_to_end(worker: PipelineWorker) -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


class Echo(FrameProcessor):
    """The caller's audio back as the bot's; each key pressed sent back as DTMF."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            out = OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
            await self.push_frame(out)
        elif isinstance(frame, InputDTMFFrame):
            await self.push_frame(OutputDTMFFrame(button=frame.button))
        else:
            await self.push_frame(frame, direction)


started: list[str] = []  # calls a bot was started for, once per start


async def echo_bot(transport: AcsTransport, call: CallContext) -> None:
    started.append(call.call_connection_id)
    await run_to_end(await run(transport, Echo()))


class Interrupter(FrameProcessor):
    """Speaks 3 s loud; a key press interrupts it, and a quiet answer follows."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            await self.push_frame(InterruptionFrame())
            await self.push_frame(speech(1.0, amplitude=0.02))
        elif not isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)


async def interrupting_bot(transport: AcsTransport, call: CallContext) -> None:
    worker = await run(transport, Interrupter())

    async def greet(transport: AcsTransport, client: Any) -> None:
        await worker.queue_frame(speech(3.0, amplitude=0.5))

    transport.add_event_handler("on_client_connected", greet)

    await run_to_end(worker)


async def goodbye_bot(transport: AcsTransport, call: CallContext) -> None:
    """Says a 1 s goodbye and ends its pipeline itself."""
    worker = await run(transport)

    async def goodbye(transport: AcsTransport, client: Any) -> None:
        # As a TTS service says it: the stop flushes the last partial chunk.
        await worker.queue_frames(
            [TTSStartedFrame(), speech(1.0), TTSStoppedFrame(), EndWorkerFrame()]
        )

    transport.add_event_handler("on_client_connected", goodbye)

    await run_to_end(worker)


async def stubborn_bot(transport: AcsTransport, call: CallContext) -> None:
    """Ignores the caller hanging up: the bridge must cancel it."""
    worker = await run(transport)

    async def gone(transport: AcsTransport, client: Any) -> None:
        disconnected.append(call.call_connection_id)

    transport.add_event_handler("on_client_disconnected", gone)

    await run_to_end(worker)


async def raising_bot(transport: AcsTransport, call: CallContext) -> None:
    await asyncio.sleep(0.05)
    raise RuntimeError("the bot broke")


async def llm_bot(transport: AcsTransport, call: CallContext) -> None:
    """A real Pipecat LLM (and TTS) with the bridge's tools; it speaks first."""
    llm = OpenAILLMService(
        api_key="sk-test",
        base_url=openai_base_url,
        settings=OpenAILLMService.Settings(
            model="fake-chat", system_instruction="You answer phone calls."
        ),
    )
    tts = OpenAITTSService(api_key="sk-test", base_url=openai_base_url, sample_rate=24000)
    tools = ToolsSchema(standard_tools=register_call_tools(llm, transport))
    context = LLMContext([], tools)
    aggregators = LLMContextAggregatorPair(context)
    worker = await run(transport, aggregators.user(), llm, tts, after=(aggregators.assistant(),))

    async def start(transport: AcsTransport, client: Any) -> None:
        await worker.queue_frame(LLMRunFrame())

    transport.add_event_handler("on_client_connected", start)
    try:
        await run_to_end(worker)
    finally:
        await llm._client.close()
        await tts._client.close()
