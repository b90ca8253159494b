"""What the Realtime service's events mean for the call: audio, barge-in, transcripts, errors.

One `Conversation` lives as long as the call, across the sessions the backend opens: the
transcript history and the player outlive a socket, the per-response accounting does not.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import time
from collections.abc import Mapping
from typing import Literal

from openai.types.realtime.conversation_item import ConversationItem

from app.agent.runner import ToolRunner
from app.backends.base import BackendEvent, MediaOutput
from app.backends.realtime.errors import (
    RACE_EVENT_PREFIX,
    RealtimeFatal,
    SessionExpired,
    classify_error,
)
from app.backends.realtime.history import ConversationHistory
from app.backends.realtime.playback import PlaybackLedger
from app.backends.realtime.player import AudioPlayer
from app.backends.realtime.socket import RealtimeSocket, ServerEvent
from app.backends.realtime.tool_calls import ToolCalls

log = logging.getLogger(__name__)

HEARD_POLL_MIN_S = 0.02
HEARD_POLL_MAX_S = 0.25


class Conversation:
    """Turns server events into calls on the MediaOutput, and barge-ins into client events."""

    def __init__(
        self,
        output: MediaOutput,
        log_extra: Mapping[str, str | None],
        tools: ToolRunner | None = None,
        *,
        sample_rate: int = 24000,
    ) -> None:
        self.output = output
        self.history = ConversationHistory()
        self.ledger = PlaybackLedger(bytes_per_ms=sample_rate * 2 // 1000)
        self.player = AudioPlayer(output, on_play=self._on_play)
        self.caller_speaking = False
        self.dropped_deltas = 0
        self._speech_stopped_at: float | None = None
        self._event_seq = 0
        self._log_extra = dict(log_extra)
        self.tool_calls = (
            None if tools is None else ToolCalls(tools, output, self.until_heard, log_extra)
        )

    def new_session(self) -> None:
        """A new, empty Realtime session: old response and item ids mean nothing to it."""
        self.ledger.reset()
        self.caller_speaking = False
        if self.tool_calls is not None:
            self.tool_calls.new_session()

    def session_lost(self) -> None:
        """The socket dropped: the new session knows nothing of a cut-off response, so stop it."""
        if self.ledger.is_speaking(self.output.heard_ms):
            self.player.interrupt()
            self.output.stop_audio()

    def quiet(self) -> bool:
        """Nobody is speaking: a good moment to renew the session."""
        return not self.caller_speaking and not self.ledger.is_speaking(self.output.heard_ms)

    async def close(self) -> None:
        if self.tool_calls is not None:
            await self.tool_calls.close()
        await self.player.close()

    async def until_heard(self) -> None:
        """Wait until the response in flight is done and the caller has heard all its audio."""
        heard_ms = self.output.heard_ms
        while self.ledger.is_speaking(heard_ms):
            # What the caller hears is estimated from the clock: sleep about as long as is left.
            left_s = self.ledger.unheard_ms(heard_ms) / 1000.0
            await asyncio.sleep(min(max(left_s, HEARD_POLL_MIN_S), HEARD_POLL_MAX_S))

    async def handle(self, connection: RealtimeSocket, event: ServerEvent) -> None:
        """Act on one server event; raises RealtimeFatal or SessionExpired."""
        if event.type == "response.output_audio.delta":
            self._on_audio(event.response_id, event.item_id, event.delta)
        elif event.type == "response.output_audio.done":
            if self.ledger.audio_done(event.item_id):
                self.player.finish(event.item_id)
        elif event.type == "input_audio_buffer.speech_started":
            self.caller_speaking = True
            await self.barge_in(connection)
        elif event.type == "input_audio_buffer.speech_stopped":
            self.caller_speaking = False
            self._speech_stopped_at = time.monotonic()
        elif event.type == "input_audio_buffer.committed":
            self.history.reserve(event.item_id, "caller")
        elif event.type == "conversation.item.input_audio_transcription.completed":
            self._on_transcript(event.item_id, "caller", event.transcript)
        elif event.type == "response.output_audio_transcript.done":
            self._on_transcript(event.item_id, "agent", event.transcript)
        elif event.type == "response.created":
            if event.response.id:
                self.ledger.response_created(event.response.id)
                if self.tool_calls is not None:
                    self.tool_calls.response_created(event.response.id)
        elif event.type == "response.function_call_arguments.done":
            if self.tool_calls is not None:
                self.tool_calls.requested(
                    connection, event.response_id, event.call_id, event.name, event.arguments
                )
        elif event.type == "response.output_item.done":
            item = event.item
            if item.type == "function_call" and self.tool_calls is not None:
                self.tool_calls.requested(
                    connection, event.response_id, item.call_id, item.name, item.arguments
                )
        elif event.type == "response.done":
            if event.response.id:
                # Items the service sent no `response.output_audio.done` for end here.
                for item_id in self.ledger.response_done(event.response.id):
                    self.player.finish(item_id)
                await self._tools_after(connection, event.response.id, event.response.output)
            details = event.response.status_details
            if event.response.status == "failed" and details and details.error:
                # Quota and some auth failures arrive here rather than as `error` events.
                failure = details.error
                message = failure.message or "the response failed"
                self._on_error(failure.code, failure.type, None, message)
        elif event.type == "error":
            error = event.error
            self._on_error(error.code, error.type, error.event_id, error.message)

    async def barge_in(self, connection: RealtimeSocket) -> None:
        """The caller talks over the model: stop, cancel, and say what was heard."""
        interruption = self.ledger.interrupt(self.output.heard_ms)
        if interruption is None:
            return
        # Synchronously, before any await: nothing more of this response reaches the caller.
        self.player.interrupt()
        self.output.stop_audio()
        if interruption.cut is not None:
            self.history.cut(*interruption.cut)
        if interruption.response_id is not None:
            await connection.send(
                {
                    "type": "response.cancel",
                    "event_id": self._race_event_id("cancel"),
                    "response_id": interruption.response_id,
                }
            )
        truncation = interruption.truncation
        if truncation is not None:
            await connection.send(
                {
                    "type": "conversation.item.truncate",
                    "event_id": self._race_event_id("truncate"),
                    "item_id": truncation.item_id,
                    "content_index": 0,
                    "audio_end_ms": truncation.audio_end_ms,
                }
            )

    async def _tools_after(
        self,
        connection: RealtimeSocket,
        response_id: str,
        output: list[ConversationItem] | None,
    ) -> None:
        tool_calls = self.tool_calls
        if tool_calls is None:
            return
        # A server that sent no per-item events still lists the calls in the response.
        for item in output or ():
            if item.type == "function_call":
                tool_calls.requested(
                    connection, response_id, item.call_id, item.name, item.arguments
                )
        await tool_calls.response_done(connection, response_id)

    def _on_audio(self, response_id: str, item_id: str, delta: str) -> None:
        try:
            pcm = binascii.a2b_base64(delta)
        except binascii.Error:
            log.warning("the model sent audio that is not base64", extra=self._log_extra)
            return
        if not self.ledger.accept(response_id, item_id, len(pcm)):
            self.dropped_deltas += 1  # a late delta of an interrupted response
            return
        self.history.reserve(item_id, "agent")
        self.player.enqueue(item_id, pcm)

    def _on_play(self) -> None:
        started = self._speech_stopped_at
        if started is not None:
            self._speech_stopped_at = None
            latency_ms = round((time.monotonic() - started) * 1000.0, 1)
            self.output.report(BackendEvent("turn_latency", {"ms": latency_ms}))

    def _on_transcript(self, item_id: str, role: Literal["caller", "agent"], text: str) -> None:
        text = text.strip()
        if not text:
            return
        self.history.record(item_id, role, text)
        data: dict[str, object] = {"role": role, "text": text}
        if role == "agent" and self.ledger.was_truncated(item_id):
            data["interrupted"] = True
        self.output.report(BackendEvent("transcript", data))

    def _on_error(
        self, code: str | None, kind: str | None, event_id: str | None, message: str
    ) -> None:
        verdict = classify_error(code, kind, event_id)
        if verdict == "benign":
            log.debug("expected race with the model: %s", code, extra=self._log_extra)
        elif verdict == "expired":
            raise SessionExpired(message)
        elif verdict == "fatal":
            raise RealtimeFatal(f"{code or kind}: {message}")
        else:
            log.warning("the model reported: %s (%s)", message, code, extra=self._log_extra)
            data = {"message": message, "code": code, "fatal": False}
            self.output.report(BackendEvent("error", data))

    def _race_event_id(self, kind: str) -> str:
        self._event_seq += 1
        return f"{RACE_EVENT_PREFIX}{kind}-{self._event_seq}"
