"""The emulated Call Automation service: call state, the operations the REST API exposes, and
what happens after each (callbacks, media start/stop), kept in order per call.

Each operation validates and changes state synchronously (so the REST answer and a following
GET agree), then queues its side effects on the call's lane: later operations on the same call
wait for them, and their callbacks go out in the same order.

Refusals: unknown call or one already disconnected -> 404 (code 8522); an unknown
incomingCallContext -> 400; a context already answered (under another Repeatability-Request-ID)
-> 409, which the SDK raises as ResourceExistsError; media start when active, or stop when not
-> 409; media operations, transfers and DTMF sends while the call is not established
(connecting, or a transfer in progress) -> 400 (code 8501); a body that fails validation
(unknown DTMF tone, malformed identifier) -> 400.

A transfer puts the call in `transferring`; then either CallTransferAccepted, after which this
call connection ends as ACS ends it (media stops, CallDisconnected), or, with a planned fault,
CallTransferFailed and the call is `connected` again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.emulator import payloads
from app.emulator.callbacks import CallbackSender
from app.emulator.errors import EmulatorError, bad_request, call_not_found
from app.emulator.faults import DEFAULT_MEDIA_FAILURE, FaultPlan
from app.emulator.hangups import ScheduledHangUps
from app.emulator.lanes import SerialLanes
from app.emulator.media_client import MediaClient
from app.emulator.media_handler import MediaHandler
from app.emulator.records import EmulatedCall, MediaSubscriptionState, OfferedCall

if TYPE_CHECKING:
    from app.emulator.caller_script import StreamScript
from app.emulator.validation import (
    dtmf_tones,
    identifier_model,
    media_streaming_options,
    optional_str,
    required_str,
    targets,
)

log = logging.getLogger(__name__)

MEDIA_FAILED_MESSAGE = "Action failed, not able to establish websocket connection."
HANDLER_START_TIMEOUT_S = 10.0  # a far end that never connects is reported as a failure
HANDLER_STOP_TIMEOUT_S = 5.0


class CallEngine:
    """Owns every call's state and the per-call lanes that run their side effects."""

    def __init__(
        self,
        *,
        calls: dict[str, EmulatedCall],
        callbacks: CallbackSender,
        faults: FaultPlan,
        app_identity: str,
        media_handler: MediaHandler | None = None,
        connect_delay_s: float = 0.05,
        transfer_delay_s: float = 0.0,
    ) -> None:
        self.calls = calls
        self.offers: dict[str, OfferedCall] = {}
        self._callbacks = callbacks
        self._faults = faults
        self._app_identity = app_identity
        self._media_handler = media_handler
        self._connect_delay_s = connect_delay_s
        self._transfer_delay_s = transfer_delay_s  # the target "rings" this long
        self._lanes = SerialLanes()
        self._hang_ups = ScheduledHangUps()
        self._media_running: set[str] = set()
        if isinstance(media_handler, MediaClient):
            media_handler.on_reestablished = self._media_reestablished

    def offer(
        self,
        caller: str,
        callee: str,
        caller_display_name: str,
        *,
        script: StreamScript | None = None,
        hang_up_after_s: float | None = None,
    ) -> OfferedCall:
        """Announce a new incoming call: it can be answered with the returned context. Once
        answered, its caller says `script` and hangs up after `hang_up_after_s`."""
        offer = OfferedCall(
            incoming_call_context=payloads.new_incoming_call_context(),
            server_call_id=payloads.new_server_call_id(),
            correlation_id=str(uuid.uuid4()),
            caller=caller,
            callee=callee,
            caller_display_name=caller_display_name,
            caller_script=script,
            hang_up_after_s=hang_up_after_s,
        )
        self.offers[offer.incoming_call_context] = offer
        return offer

    def answer(self, body: Mapping[str, Any]) -> EmulatedCall:
        """Answer an offered call; it is connected at once and its callbacks follow."""
        context = required_str(body, "incomingCallContext")
        callback_uri = required_str(body, "callbackUri")
        media_options = media_streaming_options(body)
        offer = self.offers.get(context)
        if offer is None:
            raise bad_request("Invalid incomingCallContext: unknown or expired.")
        if offer.answered_call_id is not None or offer.rejected_reason is not None:
            raise EmulatorError(409, "Conflict", "The call has already been answered.")
        call = EmulatedCall(
            call_connection_id=str(uuid.uuid4()),
            server_call_id=offer.server_call_id,
            correlation_id=offer.correlation_id,
            callback_uri=callback_uri,
            operation_context=optional_str(body, "operationContext"),
            source=payloads.identifier(offer.caller),
            targets=[payloads.identifier(offer.callee)],
            caller=offer.caller,
            state="connected",
            media_options=media_options,
            media_state=_initial_media_state(media_options),
            answer_body=dict(body),
            direction="inbound",
            caller_display_name=offer.caller_display_name,
            caller_script=offer.caller_script,
        )
        offer.answered_call_id = call.call_connection_id
        self.calls[call.call_connection_id] = call
        self._lanes.submit(call.call_connection_id, lambda: self._connected(call))
        if offer.hang_up_after_s is not None:
            self._hang_ups.schedule(
                call.call_connection_id,
                offer.hang_up_after_s,
                lambda: self.remote_hang_up(call.call_connection_id),
            )
        return call

    def create(self, body: Mapping[str, Any]) -> EmulatedCall:
        """Place an outbound call; it connects after the connect delay."""
        call_targets = targets(body)
        callback_uri = required_str(body, "callbackUri")
        media_options = media_streaming_options(body)
        caller_number = body.get("sourceCallerIdNumber")
        if isinstance(caller_number, dict) and isinstance(caller_number.get("value"), str):
            source = payloads.identifier(caller_number["value"])
        else:
            source = payloads.identifier(self._app_identity)
        call = EmulatedCall(
            call_connection_id=str(uuid.uuid4()),
            server_call_id=payloads.new_server_call_id(),
            correlation_id=str(uuid.uuid4()),
            callback_uri=callback_uri,
            operation_context=optional_str(body, "operationContext"),
            source=source,
            targets=call_targets,
            caller=source["rawId"],
            state="connecting",
            media_options=media_options,
            media_state=_initial_media_state(media_options),
            answer_body=dict(body),
            direction="outbound",
            caller_display_name=optional_str(body, "sourceDisplayName"),
        )
        self.calls[call.call_connection_id] = call
        self._lanes.submit(call.call_connection_id, lambda: self._connect_outbound(call))
        return call

    def get(self, call_connection_id: str) -> EmulatedCall:
        """A live call, or 404 (a disconnected call no longer exists for the service)."""
        call = self.calls.get(call_connection_id)
        if call is None or call.is_disconnected:
            raise call_not_found(call_connection_id)
        return call

    def start_media(self, call_connection_id: str, body: Mapping[str, Any]) -> None:
        """startMediaStreaming: 409 when already active; MediaStreamingStarted follows."""
        call = self._established(call_connection_id)
        if call.media_options is None:
            raise bad_request("Media streaming is not configured for this call.")
        if call.media_state == "active":
            raise EmulatorError(409, "Conflict", "Media streaming is already active.")
        call.media_state = "active"
        context, url = _operation_target(call, body)
        self._lanes.submit(call.call_connection_id, lambda: self._start_media(call, context, url))

    def stop_media(self, call_connection_id: str, body: Mapping[str, Any]) -> None:
        """stopMediaStreaming: 409 when not active; MediaStreamingStopped follows."""
        call = self._established(call_connection_id)
        if call.media_state != "active":
            raise EmulatorError(409, "Conflict", "Media streaming is not active.")
        call.media_state = "inactive"
        context, url = _operation_target(call, body)
        self._lanes.submit(call.call_connection_id, lambda: self._stop_media(call, context, url))

    def transfer(self, call_connection_id: str, body: Mapping[str, Any]) -> str | None:
        """transferToParticipant: the call is `transferring`; CallTransferAccepted (then the call
        ends) or CallTransferFailed follows. Returns the operationContext to echo."""
        call = self._established(call_connection_id)
        target = identifier_model(body, "targetParticipant", required=True)
        transferee = identifier_model(body, "transferee", required=False)
        caller_id = body.get("sourceCallerIdNumber")
        if caller_id is not None and not (
            isinstance(caller_id, dict) and isinstance(caller_id.get("value"), str)
        ):
            raise bad_request("The field sourceCallerIdNumber must be a phone number object.")
        context, url = _operation_target(call, body)
        assert target is not None  # required
        call.state = "transferring"
        away = transferee or _remote_party(call)
        self._lanes.submit(
            call.call_connection_id, lambda: self._transfer(call, context, url, target, away)
        )
        return context

    def send_dtmf(self, call_connection_id: str, body: Mapping[str, Any]) -> str | None:
        """sendDtmfTones: SendDtmfTonesCompleted (or Failed) follows. Returns the context."""
        call = self._established(call_connection_id)
        tones = dtmf_tones(body)
        identifier_model(body, "targetParticipant", required=True)
        context, url = _operation_target(call, body)
        call.sent_tones.extend(tones)
        self._lanes.submit(call.call_connection_id, lambda: self._send_dtmf(call, context, url))
        return context

    def hang_up(self, call_connection_id: str) -> None:
        """Hang up (or terminate): media stops, then CallDisconnected."""
        call = self.get(call_connection_id)
        self._disconnect(call)

    def remote_hang_up(self, call_connection_id: str) -> None:
        """The far end hangs up; a call already disconnected is left alone."""
        call = self.calls.get(call_connection_id)
        if call is None:
            raise KeyError(call_connection_id)
        if not call.is_disconnected:
            self._disconnect(call)

    async def join(self) -> None:
        """Wait until every queued side effect has run."""
        await self._lanes.join()

    async def aclose(self) -> None:
        """Cancel pending side effects and close any media stream still open."""
        await self._hang_ups.aclose()
        await self._lanes.aclose()
        running = [self.calls[call_id] for call_id in self._media_running]
        self._media_running.clear()
        for call in running:
            await self._stop_handler(call)

    def _established(self, call_connection_id: str) -> EmulatedCall:
        call = self.get(call_connection_id)
        if call.state != "connected":
            raise bad_request("Action is invalid when call is not in Established state.", "8501")
        return call

    def _disconnect(self, call: EmulatedCall) -> None:
        call.state = "disconnected"
        self._hang_ups.cancel(call.call_connection_id)
        self._lanes.submit(call.call_connection_id, lambda: self._disconnected(call))

    def _send(self, call: EmulatedCall, event: dict[str, Any], url: str | None = None) -> None:
        self._callbacks.send(call.call_connection_id, url or call.callback_uri, event)

    async def _connect_outbound(self, call: EmulatedCall) -> None:
        await asyncio.sleep(self._connect_delay_s)
        if call.is_disconnected:
            return
        call.state = "connected"
        await self._connected(call)

    async def _connected(self, call: EmulatedCall) -> None:
        if call.is_disconnected:
            return
        call.participants_sequence += 1
        participants = [p for p in [call.source, *call.targets] if p is not None]
        self._send(
            call, payloads.participants_updated(call, participants, call.participants_sequence)
        )
        self._send(call, payloads.call_connected(call))
        if call.media_options is not None and call.media_options.get("startMediaStreaming"):
            await self._start_media(call, call.operation_context, None)

    async def _start_media(self, call: EmulatedCall, context: str | None, url: str | None) -> None:
        if call.is_disconnected:
            call.media_state = "inactive"
            return
        failure = self._faults.take_media_failure()
        if failure is None and self._media_handler is not None:
            try:
                await asyncio.wait_for(self._media_handler.start(call), HANDLER_START_TIMEOUT_S)
            except Exception as exc:
                # Any failure of the far end's socket is what ACS reports as MediaStreamingFailed.
                log.info("media start failed for %s: %r", call.call_connection_id, exc)
                failure = DEFAULT_MEDIA_FAILURE
        if failure is not None:
            call.media_state = "inactive"
            event = payloads.media_streaming_failed(call, failure, MEDIA_FAILED_MESSAGE, context)
            self._send(call, event, url)
            return
        self._media_running.add(call.call_connection_id)
        self._send(call, payloads.media_streaming_started(call, context), url)

    def _media_reestablished(self, call: EmulatedCall) -> None:
        """The far end's socket came back after an abnormal close: ACS reports it as started,
        with the details `streamConnectionReestablished`."""
        if call.call_connection_id not in self._media_running or call.is_disconnected:
            return
        event = payloads.media_streaming_started(call, None)
        event["data"]["mediaStreamingUpdate"]["mediaStreamingStatusDetails"] = (
            "streamConnectionReestablished"
        )
        self._send(call, event)

    async def _stop_media(self, call: EmulatedCall, context: str | None, url: str | None) -> None:
        if call.call_connection_id not in self._media_running:
            return  # the start failed: there is no stream to stop
        self._media_running.discard(call.call_connection_id)
        await self._stop_handler(call)
        self._send(call, payloads.media_streaming_stopped(call, context), url)

    async def _transfer(
        self,
        call: EmulatedCall,
        context: str | None,
        url: str,
        target: dict[str, Any],
        transferee: dict[str, Any] | None,
    ) -> None:
        if self._transfer_delay_s > 0:
            await asyncio.sleep(self._transfer_delay_s)
        if call.is_disconnected:
            return  # hung up before the transfer completed: nothing to report
        failure = self._faults.take_transfer_failure()
        if failure is not None:
            call.state = "connected"
            result = failure.result_information()
            self._send(call, payloads.call_transfer_failed(call, context, result), url)
            return
        call.transfer_target = payloads.with_raw_id(target)
        self._send(call, payloads.call_transfer_accepted(call, context, target, transferee), url)
        # The transferee now talks to the target: this call connection ends for the app.
        call.state = "disconnected"
        await self._disconnected(call)

    async def _send_dtmf(self, call: EmulatedCall, context: str | None, url: str) -> None:
        if call.is_disconnected:
            return
        failure = self._faults.take_send_dtmf_failure()
        if failure is not None:
            result = failure.result_information()
            self._send(call, payloads.send_dtmf_tones_failed(call, context, result), url)
            return
        self._send(call, payloads.send_dtmf_tones_completed(call, context), url)

    async def _disconnected(self, call: EmulatedCall) -> None:
        if call.call_connection_id in self._media_running:
            call.media_state = "inactive"
            await self._stop_media(call, call.operation_context, None)
        self._send(call, payloads.call_disconnected(call))

    async def _stop_handler(self, call: EmulatedCall) -> None:
        if self._media_handler is None:
            return
        try:
            await asyncio.wait_for(self._media_handler.stop(call), HANDLER_STOP_TIMEOUT_S)
        except Exception:
            # The stream ends either way; a failing plug-in must not stop the call's events.
            log.exception("media handler stop failed for %s", call.call_connection_id)


def _initial_media_state(options: dict[str, Any] | None) -> MediaSubscriptionState:
    if options is None:
        return "disabled"
    return "active" if options.get("startMediaStreaming") else "inactive"


def _remote_party(call: EmulatedCall) -> dict[str, Any] | None:
    """Who a transfer moves away: the caller of an inbound call, the callee of an outbound one."""
    if call.direction == "inbound":
        return call.source
    return call.targets[0] if call.targets else None


def _operation_target(call: EmulatedCall, body: Mapping[str, Any]) -> tuple[str | None, str]:
    """The operationContext and callback URL of a start/stop request."""
    context = optional_str(body, "operationContext")
    url = optional_str(body, "operationCallbackUri") or call.callback_uri
    return context, url
