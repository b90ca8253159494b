"""The happy paths, driven by the real Call Automation SDK: answer, callbacks, media start and
stop, hang up, outbound calls."""

from __future__ import annotations

from azure.communication.callautomation import PhoneNumberIdentifier
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.messaging import CloudEvent

from app.emulator import AcsEmulator
from tests.conftest import load_corpus
from tests.emulator.conftest import TRANSPORT_URL, HttpSink, answer_incoming, media_options

CORPUS_EVENTS = "callback_events/pysdk_e2e_media_{}.json"


async def test_answer_records_media_options_as_wire_camel_case(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())

    assert call.media_options == {
        "transportUrl": TRANSPORT_URL,
        "transportType": "websocket",
        "contentType": "audio",
        "audioChannelType": "mixed",
        "startMediaStreaming": True,
        "enableBidirectional": True,
        "audioFormat": "pcm16KMono",
    }
    assert call.answer_body is not None
    assert call.answer_body["callbackUri"] == sink.url()


async def test_answer_returns_connected_call_properties(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    props, call = await answer_incoming(emulator, client, sink, media=media_options())

    assert props.call_connection_state == "connected"
    assert props.server_call_id == call.server_call_id
    assert props.correlation_id == call.correlation_id
    assert props.callback_url == sink.url()
    assert emulator.requests[-1].path == "/calling/callConnections:answer"
    assert emulator.requests[-1].query == {"api-version": "2026-03-12"}


async def test_answer_posts_participants_connected_then_media_started_in_order(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.wait_for(lambda: len(sink.posts()) == 3)

    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected", "MediaStreamingStarted"]
    assert all(len(r.body) == 1 for r in sink.posts())  # one event per POST
    assert {e["data"]["callConnectionId"] for e in sink.events()} == {call.call_connection_id}


async def test_callbacks_are_shaped_like_the_service_recordings(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.wait_for(lambda: len(sink.posts()) == 3)

    for event in sink.events():
        name = event["type"].removeprefix("Microsoft.Communication.")
        recorded = load_corpus(CORPUS_EVENTS.format(name))
        assert event.keys() == recorded.keys()
        assert recorded["data"].keys() <= event["data"].keys()
        assert event["data"]["version"] == "2025-05-15"
        assert event["data"]["publicEventType"] == event["type"]
        assert event["source"] == f"calling/callConnections/{call.call_connection_id}"
        assert CloudEvent.from_dict(event).type == event["type"]


async def test_callbacks_carry_the_answer_operation_context(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    await answer_incoming(emulator, client, sink, operation_context="ctx-42")
    await emulator.wait_for(lambda: len(sink.posts()) == 2)

    connected = sink.events()[1]
    assert connected["type"] == "Microsoft.Communication.CallConnected"
    assert connected["data"]["operationContext"] == "ctx-42"


async def test_get_reports_state_and_media_subscription(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))

    fetched = await client.get_call_connection(call.call_connection_id).get_call_properties()

    assert fetched.call_connection_state == "connected"
    assert fetched.media_streaming_subscription is not None
    assert fetched.media_streaming_subscription.state == "inactive"
    assert fetched.media_streaming_subscription.subscribed_content_types == ["audio"]


async def test_start_and_stop_answer_202_and_post_media_events(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))
    connection = client.get_call_connection(call.call_connection_id)

    await connection.start_media_streaming(operation_context="start-1")
    after_start = call.media_state
    await connection.stop_media_streaming(operation_context="stop-1")
    after_stop = call.media_state
    await emulator.wait_for(lambda: len(sink.posts()) == 4)

    assert [r.status for r in emulator.requests[-2:]] == [202, 202]
    assert (after_start, after_stop) == ("active", "inactive")
    started, stopped = (event["data"] for event in sink.events()[2:])
    assert started["mediaStreamingUpdate"]["mediaStreamingStatus"] == "mediaStreamingStarted"
    assert started["operationContext"] == "start-1"
    assert stopped["mediaStreamingUpdate"]["mediaStreamingStatus"] == "mediaStreamingStopped"
    assert stopped["operationContext"] == "stop-1"


async def test_start_media_events_go_to_the_operation_callback_uri(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))
    connection = client.get_call_connection(call.call_connection_id)

    await connection.start_media_streaming(operation_callback_url=sink.url("/operations"))
    await emulator.wait_for(lambda: len(sink.posts("/operations")) == 1)

    assert sink.event_types("/operations") == ["MediaStreamingStarted"]
    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected"]


async def test_hang_up_answers_204_then_media_stopped_and_disconnected(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())

    await client.get_call_connection(call.call_connection_id).hang_up(is_for_everyone=False)
    await emulator.wait_for(lambda: len(sink.posts()) == 5)

    assert emulator.requests[-1].method == "DELETE"
    assert emulator.requests[-1].status == 204
    assert sink.event_types()[-2:] == ["MediaStreamingStopped", "CallDisconnected"]
    disconnected = sink.events()[-1]
    assert disconnected["data"]["resultInformation"]["subCode"] == 7000
    assert call.state == "disconnected"


async def test_terminate_answers_204_then_disconnected(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)

    await client.get_call_connection(call.call_connection_id).hang_up(is_for_everyone=True)
    await emulator.wait_for(lambda: len(sink.posts()) == 3)

    assert emulator.requests[-1].path.endswith(":terminate")
    assert emulator.requests[-1].status == 204
    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected", "CallDisconnected"]


async def test_remote_hang_up_posts_media_stopped_and_disconnected(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())

    await emulator.remote_hang_up(call.call_connection_id)
    await emulator.settle()

    assert emulator.event_types_for(call.call_connection_id)[-2:] == [
        "MediaStreamingStopped",
        "CallDisconnected",
    ]


async def test_create_call_answers_201_and_connects_after_the_delay(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    props = await client.create_call(
        PhoneNumberIdentifier("+15550100200"),
        sink.url(),
        source_caller_id_number=PhoneNumberIdentifier("+18005550100"),
        media_streaming=media_options(),
    )
    assert emulator.requests[-1].status == 201
    assert props.call_connection_state == "connecting"

    await emulator.wait_for(lambda: len(sink.posts()) == 3)

    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected", "MediaStreamingStarted"]
    assert props.call_connection_id is not None
    call = emulator.calls[props.call_connection_id]
    assert call.state == "connected"
    assert call.direction == "outbound"
    assert call.targets[0]["phoneNumber"] == {"value": "+15550100200"}


async def test_callback_receiver_down_is_recorded_not_raised(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url("/incoming"))
    await client.answer_call(offer.incoming_call_context, "http://127.0.0.1:9/unreachable")
    await emulator.settle()

    assert len(emulator.callbacks) == 2
    assert all(c.status is None and c.error for c in emulator.callbacks)
    # The emulator keeps serving.
    second = await answer_incoming(emulator, client, sink)
    assert second[1].state == "connected"
