"""The emulator streams a call as its answer (or create) asked, like ACS: DtmfData only with
`enableDtmfTones`, the service's audio ignored without `enableBidirectional`, one AudioData per
remote participant (with its participantRawID) when `audioChannelType` is unmixed.

The service here is a bare WebSocket server on 127.0.0.1: it records what ACS sends, and sends
audio and a StopAudio back as soon as the stream starts."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.communication.callautomation import (
    AudioFormat,
    CommunicationUserIdentifier,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    PhoneNumberIdentifier,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from websockets.asyncio.server import ServerConnection, serve

from app.emulator import AcsEmulator
from app.emulator.media_client import MediaClient, MediaStream, StreamScript, tone
from tests.emulator.conftest import HttpSink

FRAME = bytes(640)


@dataclass
class FakeService:
    """The service's media socket: what it received, by kind."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("kind") == kind]

    async def handle(self, socket: ServerConnection) -> None:
        audio = base64.b64encode(FRAME).decode()
        await socket.send(json.dumps({"Kind": "AudioData", "AudioData": {"Data": audio}}))
        await socket.send(json.dumps({"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}))
        async for message in socket:
            self.received.append(json.loads(message))
            self.arrived.set()


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    async with serve(fake.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ws"
        yield fake


@pytest.fixture
async def emulator() -> AsyncIterator[AcsEmulator]:
    """The emulator with a media client, whose callers press 5 on the second frame."""
    script = StreamScript(audio=tone(16000, 1.0), dtmf=[(1, "5")])
    async with AcsEmulator(media_handler=MediaClient(script)) as emu:
        yield emu


def options(
    url: str, *, dtmf: bool | None = None, bidirectional: bool | None = None, unmixed: bool = False
) -> MediaStreamingOptions:
    channel = (
        MediaStreamingAudioChannelType.UNMIXED if unmixed else MediaStreamingAudioChannelType.MIXED
    )
    return MediaStreamingOptions(
        transport_url=url,
        transport_type=StreamingTransportType.WEBSOCKET,
        content_type=MediaStreamingContentType.AUDIO,
        audio_channel_type=channel,
        start_media_streaming=True,
        enable_bidirectional=bidirectional,
        audio_format=AudioFormat.PCM16_K_MONO,
        enable_dtmf_tones=dtmf,
    )


async def answered_stream(
    emulator: AcsEmulator,
    client: CallAutomationClient,
    sink: HttpSink,
    media: MediaStreamingOptions,
) -> MediaStream:
    offer = await emulator.place_incoming_call(sink.url("/incoming"), caller="+14255550123")
    props = await client.answer_call(offer.incoming_call_context, sink.url(), media_streaming=media)
    assert props.call_connection_id is not None
    return await _stream(emulator, props.call_connection_id)


async def _stream(emulator: AcsEmulator, call_connection_id: str) -> MediaStream:
    media = emulator.media_handler
    assert isinstance(media, MediaClient)
    await emulator.wait_for(lambda: call_connection_id in media.streams)
    return media.streams[call_connection_id]


async def _audio_frames(service: FakeService, count: int) -> list[dict[str, Any]]:
    """The AudioData the service received, once there are `count`."""
    async with asyncio.timeout(10):
        while len(service.of_kind("AudioData")) < count:
            service.arrived.clear()
            await service.arrived.wait()
    return service.of_kind("AudioData")


@pytest.mark.parametrize("enabled", [None, False, True])
async def test_dtmf_data_is_sent_only_when_the_answer_enables_dtmf_tones(
    emulator: AcsEmulator,
    client: CallAutomationClient,
    sink: HttpSink,
    service: FakeService,
    enabled: bool | None,
) -> None:
    await answered_stream(emulator, client, sink, options(service.url, dtmf=enabled))
    await _audio_frames(service, 5)  # the tone was due before the second frame's audio
    tones = [m["dtmfData"]["data"] for m in service.of_kind("DtmfData")]
    assert tones == (["5"] if enabled else [])


@pytest.mark.parametrize("enabled", [None, False])
async def test_the_services_audio_is_ignored_without_bidirectional_streaming(
    emulator: AcsEmulator,
    client: CallAutomationClient,
    sink: HttpSink,
    service: FakeService,
    enabled: bool | None,
) -> None:
    stream = await answered_stream(
        emulator, client, sink, options(service.url, bidirectional=enabled)
    )
    await stream.wait_for(lambda s: s.ignored == 2)  # the AudioData and the StopAudio
    assert stream.received == []


async def test_the_services_audio_reaches_the_caller_with_bidirectional_streaming(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, service: FakeService
) -> None:
    stream = await answered_stream(emulator, client, sink, options(service.url, bidirectional=True))
    await stream.wait_for(lambda s: len(s.received) == 2)
    assert [r.kind for r in stream.received] == ["audio", "stop"]
    assert stream.received[0].pcm == FRAME
    assert stream.ignored == 0


async def test_mixed_audio_names_no_participant(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, service: FakeService
) -> None:
    await answered_stream(emulator, client, sink, options(service.url))
    frames = await _audio_frames(service, 3)
    assert all("participantRawID" not in f["audioData"] for f in frames)


async def test_unmixed_audio_of_an_inbound_call_is_the_callers_with_its_raw_id(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, service: FakeService
) -> None:
    await answered_stream(emulator, client, sink, options(service.url, unmixed=True))
    frames = await _audio_frames(service, 3)
    assert {f["audioData"]["participantRawID"] for f in frames} == {"4:+14255550123"}


async def test_unmixed_audio_of_a_call_to_two_people_comes_per_participant(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, service: FakeService
) -> None:
    alice, bob = "8:acs:resource_alice", "4:+14255550177"
    props = await client.create_call(
        [CommunicationUserIdentifier(alice), PhoneNumberIdentifier("+14255550177")],
        sink.url(),
        media_streaming=options(service.url, unmixed=True),
    )
    assert props.call_connection_id is not None
    await _stream(emulator, props.call_connection_id)
    frames = await _audio_frames(service, 6)
    # Each 20 ms tick carries one frame per participant, in the order of the call's targets.
    assert [f["audioData"]["participantRawID"] for f in frames[:4]] == [alice, bob, alice, bob]
