"""Call control through the official Call Automation SDK; SDK errors translated here, once.

CallControlError            base: `status` is the HTTP status the edge answers with
├── AcsNotConfigured        503  no ACS resource (nor emulator) is configured
├── CallNotFound            404  ACS does not know the call (ResourceNotFoundError)
├── CallConflict            409  the call is not in a state for this (ResourceExistsError)
└── AcsUnavailable          502  ACS failed, refused our credentials, or timed out
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from azure.communication.callautomation import (
    AudioFormat,
    CommunicationIdentifier,
    CommunicationUserIdentifier,
    DtmfTone,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    PhoneNumberIdentifier,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from app.calls.acs_codes import explain_failure
from app.calls.deliveries import IncomingCall
from app.settings import AudioChannel, AudioFormatName, Settings

log = logging.getLogger(__name__)


class CallControlError(Exception):
    status = 500
    code = "call_control_error"


class AcsNotConfigured(CallControlError):
    status = 503
    code = "acs_not_configured"


class CallNotFound(CallControlError):
    status = 404
    code = "call_not_found"


class CallConflict(CallControlError):
    status = 409
    code = "conflict"


class AcsUnavailable(CallControlError):
    status = 502
    code = "acs_error"


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """Media streaming choices for one call (defaults come from settings)."""

    audio_format: AudioFormatName
    channel: AudioChannel
    start_on_connect: bool
    bidirectional: bool
    dtmf: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaOptions:
        return cls(
            audio_format=settings.media_audio_format,
            channel=settings.media_audio_channel,
            start_on_connect=settings.media_start_on_answer,
            bidirectional=settings.media_bidirectional,
            dtmf=settings.media_dtmf,
        )


@dataclass(frozen=True, slots=True)
class PlacedCall:
    call_connection_id: str
    server_call_id: str | None
    correlation_id: str | None


class CallControl:
    """Answer, place, stream and hang up calls through ACS."""

    def __init__(self, client: CallAutomationClient | None, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def answer(self, incoming: IncomingCall) -> PlacedCall:
        """Answer an IncomingCall with media streaming options from settings."""
        client = self._require_client()
        query = f"?correlationId={incoming.correlation_id or ''}"
        media = self.media_streaming_options(MediaOptions.from_settings(self._settings), query)
        async with _Translated("answer"):
            props = await client.answer_call(
                incoming.incoming_call_context,
                self._settings.public_url("/api/callbacks") + query,
                operation_context=f"answer:{incoming.event_id}",
                media_streaming=media,
            )
        return _placed(props)

    async def reject(self, incoming: IncomingCall) -> None:
        """Reject an IncomingCall (the caller hears it refused, not silence)."""
        client = self._require_client()
        async with _Translated("reject"):
            await client.reject_call(incoming.incoming_call_context, call_reject_reason="busy")

    async def create(
        self, target: str, source_caller_id: str | None, media: MediaOptions
    ) -> PlacedCall:
        """Place an outbound call to a phone number (`+1...`) or an ACS user (`8:acs:...`)."""
        client = self._require_client()
        tag = uuid.uuid4().hex
        query = f"?callTag={tag}"
        target_id: PhoneNumberIdentifier | CommunicationUserIdentifier = (
            PhoneNumberIdentifier(target)
            if target.startswith("+")
            else CommunicationUserIdentifier(target)
        )
        async with _Translated("create"):
            props = await client.create_call(
                target_id,
                self._settings.public_url("/api/callbacks") + query,
                source_caller_id_number=(
                    PhoneNumberIdentifier(source_caller_id) if source_caller_id else None
                ),
                operation_context=f"create:{tag}",
                media_streaming=self.media_streaming_options(media, query),
            )
        return _placed(props)

    async def start_media(self, call_connection_id: str) -> None:
        client = self._require_client()
        async with _Translated("start media streaming"):
            await client.get_call_connection(call_connection_id).start_media_streaming(
                operation_context="control:start"
            )

    async def stop_media(self, call_connection_id: str) -> None:
        client = self._require_client()
        async with _Translated("stop media streaming"):
            await client.get_call_connection(call_connection_id).stop_media_streaming(
                operation_context="control:stop"
            )

    async def hang_up(self, call_connection_id: str, *, for_everyone: bool) -> None:
        client = self._require_client()
        async with _Translated("hang up"):
            await client.get_call_connection(call_connection_id).hang_up(for_everyone)

    async def transfer(
        self, call_connection_id: str, target: CommunicationIdentifier, *, operation_context: str
    ) -> None:
        """Transfer the other party of the call to `target` (the call ends for the bridge)."""
        client = self._require_client()
        caller_id = self._settings.transfer_source_caller_id
        async with _Translated("transfer the call"):
            await client.get_call_connection(call_connection_id).transfer_call_to_participant(
                target,
                operation_context=operation_context,
                source_caller_id_number=PhoneNumberIdentifier(caller_id) if caller_id else None,
            )

    async def send_dtmf(
        self,
        call_connection_id: str,
        tones: list[DtmfTone],
        to: CommunicationIdentifier,
        *,
        operation_context: str,
    ) -> None:
        """Send DTMF `tones` to the participant `to`."""
        client = self._require_client()
        async with _Translated("send DTMF tones"):
            await client.get_call_connection(call_connection_id).send_dtmf_tones(
                tones, to, operation_context=operation_context
            )

    def media_streaming_options(
        self, media: MediaOptions, query: str = ""
    ) -> MediaStreamingOptions:
        """The SDK's MediaStreamingOptions for `media`, streaming to our `/ws`."""
        return MediaStreamingOptions(
            transport_url=self._settings.public_ws_url("/ws") + query,
            transport_type=StreamingTransportType.WEBSOCKET,
            content_type=MediaStreamingContentType.AUDIO,
            audio_channel_type=(
                MediaStreamingAudioChannelType.UNMIXED
                if media.channel == "unmixed"
                else MediaStreamingAudioChannelType.MIXED
            ),
            start_media_streaming=media.start_on_connect,
            enable_bidirectional=media.bidirectional,
            audio_format=(
                AudioFormat.PCM24_K_MONO
                if media.audio_format == "pcm24KMono"
                else AudioFormat.PCM16_K_MONO
            ),
            enable_dtmf_tones=media.dtmf,
        )

    def _require_client(self) -> CallAutomationClient:
        if self._client is None:
            raise AcsNotConfigured("no ACS resource is configured (ACS_CONNECTION_STRING)")
        return self._client


def _placed(props: object) -> PlacedCall:
    call_id = getattr(props, "call_connection_id", None)
    if not isinstance(call_id, str) or not call_id:
        raise AcsUnavailable("ACS answered without a call connection id")
    return PlacedCall(
        call_connection_id=call_id,
        server_call_id=getattr(props, "server_call_id", None),
        correlation_id=getattr(props, "correlation_id", None),
    )


class _Translated:
    """Turn the SDK's exceptions into CallControlError subclasses."""

    def __init__(self, operation: str) -> None:
        self._operation = operation

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, CallControlError):
            return False
        if isinstance(exc, ResourceNotFoundError):
            raise CallNotFound(f"ACS does not know this call ({self._operation})") from exc
        if isinstance(exc, ResourceExistsError):
            raise CallConflict(f"ACS refused to {self._operation}: {_message(exc)}") from exc
        if isinstance(exc, AzureError | TimeoutError | OSError):
            log.warning("ACS %s failed: %s", self._operation, type(exc).__name__)
            raise AcsUnavailable(f"ACS failed to {self._operation}: {_message(exc)}") from exc
        return False


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    # The first line only: SDK messages append the whole response, headers included.
    first = str(message).splitlines()[0][:300]
    # ACS's synchronous errors carry the subcode as the error's code ("8501").
    code = getattr(getattr(exc, "error", None), "code", None)
    sub_code = int(code) if isinstance(code, str) and code.isdigit() else None
    explained = explain_failure(getattr(exc, "status_code", None), sub_code)
    return f"{first} ({explained})" if explained else first
