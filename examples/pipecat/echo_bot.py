"""A Pipecat bot of your own for the bridge: PIPECAT_BOT=examples/pipecat/echo_bot.py:run_bot

It plays the caller back and answers each key pressed with the same DTMF tone. Written as
Pipecat's telephony examples are; only the transport comes from the bridge.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner


class Echo(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            audio = OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
            await self.push_frame(audio)
        elif isinstance(frame, InputDTMFFrame):
            await self.push_frame(OutputDTMFFrame(button=frame.button))
        else:
            await self.push_frame(frame, direction)


async def run_bot(transport: Any, call: Any) -> None:
    """`transport` is the call's AcsTransport, `call` its CallContext (caller, callee, ...)."""
    pipeline = Pipeline([transport.input(), Echo(), transport.output()])
    worker = PipelineWorker(pipeline, idle_timeout_secs=None)

    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    transport.add_event_handler("on_client_disconnected", on_client_disconnected)
    runner = WorkerRunner(handle_sigint=False)  # the service owns the signals
    await runner.add_workers(worker)
    await runner.run()
