"""The media handler plug-in: awaited before MediaStreamingStarted, its failure reported."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential

from app.emulator import AcsEmulator, EmulatedCall
from tests.emulator.conftest import HttpSink, answer_incoming, media_options


class RecordingHandler:
    """A media far end that records calls and can refuse to connect."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.log: list[tuple[str, str]] = []

    async def start(self, call: EmulatedCall) -> None:
        self.log.append(("start", call.call_connection_id))
        if self.fail:
            raise ConnectionRefusedError("bridge refused the WebSocket")

    async def stop(self, call: EmulatedCall) -> None:
        self.log.append(("stop", call.call_connection_id))


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def emulator(handler: RecordingHandler) -> AsyncIterator[AcsEmulator]:
    async with AcsEmulator(media_handler=handler) as emu:
        yield emu


async def test_handler_starts_before_media_streaming_started(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, handler: RecordingHandler
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.settle()

    assert handler.log == [("start", call.call_connection_id)]
    assert sink.event_types()[-1] == "MediaStreamingStarted"


async def test_handler_failure_posts_media_streaming_failed(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, handler: RecordingHandler
) -> None:
    handler.fail = True

    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.settle()

    failed = sink.events()[-1]
    assert failed["type"] == "Microsoft.Communication.MediaStreamingFailed"
    assert failed["data"]["resultInformation"]["subCode"] == 8603
    assert call.media_state == "inactive"


async def test_hang_up_stops_the_handler_before_disconnecting(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, handler: RecordingHandler
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await client.get_call_connection(call.call_connection_id).hang_up(is_for_everyone=False)
    await emulator.settle()

    assert handler.log == [("start", call.call_connection_id), ("stop", call.call_connection_id)]
    assert sink.event_types()[-2:] == ["MediaStreamingStopped", "CallDisconnected"]


async def test_stopping_the_emulator_stops_open_streams(handler: RecordingHandler) -> None:
    receiver = HttpSink()
    await receiver.start()
    emulator = AcsEmulator(media_handler=handler)
    await emulator.start()
    credential = AzureKeyCredential(emulator.access_key)
    async with CallAutomationClient(emulator.endpoint, credential) as sdk:
        _, call = await answer_incoming(emulator, sdk, receiver, media=media_options())
        await emulator.settle()

    await emulator.stop()
    await receiver.stop()

    assert handler.log[-1] == ("stop", call.call_connection_id)
