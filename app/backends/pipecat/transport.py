"""`AcsTransport`: an ACS call as a Pipecat transport, for bots written like Pipecat's examples.

The input processor pushes the caller's audio (`InputAudioRawFrame` at the call's rate), DTMF
(`InputDTMFFrame`) and ACS transcription (`TranscriptionFrame`) into the bot's pipeline. The
output processor is a `BaseOutputTransport`: it resamples and chunks any `OutputAudioRawFrame`
to the call's rate, and hands the chunks to the call's `MediaOutput` (`OutboundAudio`: paced,
one playback per bot turn). An `InterruptionFrame` stops the call's audio before anything else;
`OutputDTMFFrame`s go out through the call's `CallActions`.

Events, as on Pipecat's telephony transports: `on_client_connected(transport, call)` when the
pipeline has started, `on_client_disconnected(transport, call)` when the call's media is gone.
"""

from __future__ import annotations

import logging
from typing import Any

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    StartFrame,
    TranscriptionFrame,
)
from pipecat.observers.base_observer import BaseObserver
from pipecat.processors.aggregators.llm_context import LLMContextMessage
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.utils.time import time_now_iso8601

from app.backends.base import ActionFailed, BackendEvent, CallActions, CallContext, MediaOutput
from app.backends.pipecat.audio import OutboundAudio
from app.backends.pipecat.tools import CallTools

log = logging.getLogger(__name__)


class AcsTransport(BaseTransport):
    """One ACS call's media as a Pipecat transport; `actions` act on the call."""

    def __init__(
        self,
        call: CallContext,
        output: MediaOutput,
        actions: CallActions,
        *,
        observer: BaseObserver | None = None,
        params: TransportParams | None = None,
        sample_rate: int | None = None,
    ) -> None:
        super().__init__(name=f"AcsTransport#{call.call_connection_id[:12]}")
        self.call = call
        self.actions = actions
        self.media = output
        # The call's rate, unless the backend asked the bridge for another (the bundled bot).
        rate = self.sample_rate = sample_rate or call.stream.sample_rate
        self._params = (params or TransportParams()).model_copy(
            update={
                "audio_in_enabled": True,
                "audio_in_sample_rate": rate,
                "audio_out_enabled": True,
                "audio_out_sample_rate": rate,
                # The bridge hangs up once the last word is heard: no silence of Pipecat's.
                "audio_out_end_silence_secs": 0,
            }
        )
        self.audio = OutboundAudio(output, rate)
        self.call_tools: CallTools | None = None  # the bridge's tools (`register_call_tools`)
        self._input = AcsInputTransport(self, self._params, observer, name=f"{self}#input")
        self._output = AcsOutputTransport(self, self._params, name=f"{self}#output")
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")

    def input(self) -> AcsInputTransport:
        return self._input

    def output(self) -> AcsOutputTransport:
        return self._output

    def get_client_id(self, client: Any) -> str:
        return self.call.call_connection_id

    @property
    def ended_by_pipeline(self) -> bool:
        """The bot's pipeline ended on its own (an EndFrame reached the output)."""
        return self._output.ended

    async def client_connected(self) -> None:
        await self._call_event_handler("on_client_connected", self.call)

    async def client_disconnected(self) -> None:
        await self._call_event_handler("on_client_disconnected", self.call)


class AcsInputTransport(BaseInputTransport):
    """The caller's side: audio, DTMF and ACS transcription into the pipeline."""

    def __init__(
        self,
        transport: AcsTransport,
        params: TransportParams,
        observer: BaseObserver | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._observer = observer
        self.started = False

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await super().setup(setup)
        if self._observer is not None:
            # The call's transcript and latency come from the bot's whole pipeline.
            setup.pipeline_worker.add_observer(self._observer)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.started = True
        await self._transport.client_connected()
        await self.push_frame(ClientConnectedFrame())

    async def stop(self, frame: EndFrame) -> None:
        self.started = False
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        self.started = False
        await super().cancel(frame)

    async def audio(self, pcm: bytes) -> None:
        """One frame of the caller's audio (dropped until the pipeline has started)."""
        if self.started:
            rate = self._transport.sample_rate
            await self.push_audio_frame(
                InputAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1)
            )

    async def dtmf(self, digit: str) -> None:
        """A key the caller pressed (those Pipecat has no KeypadEntry for are dropped)."""
        try:
            button = KeypadEntry(digit)
        except ValueError:
            return
        if self.started:
            await self.push_frame(InputDTMFFrame(button=button))

    async def note(self, text: str) -> None:
        """Something the bot's LLM should know and answer (a transfer failed): a developer
        message its context aggregator appends (other bots pass it along unused)."""
        if self.started:
            message: LLMContextMessage = {"role": "developer", "content": text}
            await self.push_frame(LLMMessagesAppendFrame([message], run_llm=True))

    async def transcription(self, text: str, *, final: bool, participant: str | None) -> None:
        """ACS's own transcription of the caller (final results only)."""
        if self.started and final and text.strip():
            user = participant or self._transport.call.caller or "caller"
            frame = TranscriptionFrame(text=text, user_id=user, timestamp=time_now_iso8601())
            await self.push_frame(frame)


class AcsOutputTransport(BaseOutputTransport):
    """The bot's side: chunks of the call's rate to the call's paced output."""

    def __init__(self, transport: AcsTransport, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._interrupting = False
        self.ended = False

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)  # every chunk queued before the EndFrame is handed over
        self.ended = True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            # StopAudio first; until the sender has dropped its queue, nothing more is played.
            self._interrupting = True
            self._transport.audio.interrupt()
            try:
                await super().process_frame(frame, direction)
            finally:
                self._interrupting = False
            return
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        audio = self._transport.audio
        turn = audio.turn
        await audio.pace(len(frame.audio))
        if self._interrupting or turn != audio.turn:
            return False  # interrupted while waiting for its turn: never played
        await audio.play(frame.audio)
        return True

    def _supports_native_dtmf(self) -> bool:
        return True

    async def _write_dtmf_native(self, frame: OutputDTMFFrame | OutputDTMFUrgentFrame) -> None:
        tones = "".join(button.value for button in frame.buttons or ())
        if not tones:
            return
        try:
            await self._transport.actions.send_dtmf(tones)
        except ActionFailed as exc:
            log.warning("the bot's DTMF was not sent: %s", exc.message)
            data = {"message": f"DTMF not sent: {exc.message}", "fatal": False}
            self._transport.media.report(BackendEvent("error", data))
