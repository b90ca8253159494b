"""transferToParticipant and sendDtmfTones, driven by the real Call Automation SDK (aio and
sync): the wire requests, their 202 answers, the callbacks that follow and the faults."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.communication.callautomation import CallAutomationClient as SyncClient
from azure.communication.callautomation import (
    CommunicationUserIdentifier,
    DtmfTone,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
)
from azure.communication.callautomation._generated.models import (
    CallTransferAccepted,
    CallTransferFailed,
    SendDtmfTonesCompleted,
    SendDtmfTonesFailed,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.messaging import CloudEvent

from app.emulator import AcsEmulator, EmulatedCall, verify_request
from tests.conftest import load_corpus
from tests.emulator.conftest import HttpSink, answer_incoming, media_options, signed_request

API = "api-version=2026-03-12"
TRANSFER_EXAMPLE = (
    "rest_responses/restspec_2026-03-12_CallConnection_TransferToParticipant_example.json"
)
DTMF_EXAMPLE = "rest_responses/restspec_2026-03-12_CallMedia_SendDtmfTones_example.json"
ACCEPTED_EVENT = "callback_events/other_calls/javasdk_unit_CallTransferAccepted.json"
DTMF_COMPLETED_EVENT = "callback_events/other_calls/javasdk_unit_SendDtmfTonesCompleted.json"
DTMF_FAILED_EVENT = "callback_events/other_calls/javasdk_unit_SendDtmfTonesFailed.json"
CALLER = "+14255550123"  # AcsEmulator.place_incoming_call's default caller
AGENT = "+15550100300"
ACS_USER = "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_da7be3a9-8788-42a6-85c6-56b2cf784fce"


class RecordingHandler:
    """A media far end that only records when the stream opens and closes."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    async def start(self, call: EmulatedCall) -> None:
        self.log.append(("start", call.call_connection_id))

    async def stop(self, call: EmulatedCall) -> None:
        self.log.append(("stop", call.call_connection_id))


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def emulator(handler: RecordingHandler) -> AsyncIterator[AcsEmulator]:
    async with AcsEmulator(media_handler=handler) as emu:
        yield emu


def _action_path(call: EmulatedCall, action: str) -> str:
    return f"/calling/callConnections/{call.call_connection_id}:{action}"


def _assert_signed(emulator: AcsEmulator, index: int = -1) -> dict[str, Any]:
    """The recorded request verifies against the access key, exactly as sent; its body."""
    record = emulator.requests[index]
    assert record.headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=")
    verify_request(
        emulator.access_key,
        record.method,
        record.raw_path,
        [emulator.signed_host],
        record.headers,
        record.raw_body,
    )
    assert json.loads(record.raw_body) == record.body
    body: dict[str, Any] = record.body
    return body


def _by_type(sink: HttpSink, name: str, path: str = "/callbacks") -> dict[str, Any]:
    matches = [e for e in sink.events(path) if e["type"] == f"Microsoft.Communication.{name}"]
    assert len(matches) == 1, sink.event_types(path)
    return matches[0]


def _assert_shaped_like(event: dict[str, Any], corpus_file: str, call: EmulatedCall) -> None:
    """The envelope of a service event, every key the stored example has, parseable by the SDK."""
    recorded = load_corpus(corpus_file)
    assert event.keys() == load_corpus(ACCEPTED_EVENT).keys()  # the full CloudEvent envelope
    assert recorded.keys() <= event.keys()
    legacy = {"type", "eventSource", "time", "specversion", "datacontenttype", "subject"}
    assert recorded["data"].keys() - legacy <= event["data"].keys()
    assert event["source"] == f"calling/callConnections/{call.call_connection_id}"
    assert event["data"]["callConnectionId"] == call.call_connection_id
    assert event["data"]["serverCallId"] == call.server_call_id
    assert event["data"]["correlationId"] == call.correlation_id
    assert CloudEvent.from_dict(event).type == event["type"]


async def test_transfer_to_phone_number_answers_202_then_accepted_and_the_call_ends(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, handler: RecordingHandler
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.wait_for(lambda: "MediaStreamingStarted" in sink.event_types())
    connection = client.get_call_connection(call.call_connection_id)

    result = await connection.transfer_call_to_participant(
        PhoneNumberIdentifier(AGENT),
        operation_context="xfer-1",
        source_caller_id_number=PhoneNumberIdentifier("+18005550100"),
    )
    await emulator.wait_for(lambda: "CallDisconnected" in sink.event_types())
    await emulator.settle()

    assert result.operation_context == "xfer-1"
    record = emulator.requests[-1]
    assert (record.method, record.path, record.query, record.status) == (
        "POST",
        _action_path(call, "transferToParticipant"),
        {"api-version": "2026-03-12"},
        202,
    )
    assert "Repeatability-Request-ID" in record.headers
    assert _assert_signed(emulator) == {
        "targetParticipant": {"rawId": f"4:{AGENT}", "phoneNumber": {"value": AGENT}},
        "operationContext": "xfer-1",
        "sourceCallerIdNumber": {"value": "+18005550100"},
    }
    assert sink.event_types() == [
        "ParticipantsUpdated",
        "CallConnected",
        "MediaStreamingStarted",
        "CallTransferAccepted",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]
    assert handler.log == [("start", call.call_connection_id), ("stop", call.call_connection_id)]
    accepted = _by_type(sink, "CallTransferAccepted")
    _assert_shaped_like(accepted, ACCEPTED_EVENT, call)
    data = accepted["data"]
    assert data["operationContext"] == "xfer-1"
    assert data["resultInformation"] == load_corpus(ACCEPTED_EVENT)["data"]["resultInformation"]
    assert data["transferTarget"] == {
        "kind": "phoneNumber",
        "rawId": f"4:{AGENT}",
        "phoneNumber": {"value": AGENT},
    }
    assert data["transferee"] == call.source  # the caller is moved to the agent
    parsed = CallTransferAccepted.deserialize(data)
    assert parsed.transfer_target is not None
    assert parsed.transfer_target.raw_id == f"4:{AGENT}"
    assert parsed.result_information is not None
    assert parsed.result_information.sub_code == 7015
    assert call.state == "disconnected"
    assert call.media_state == "inactive"
    with pytest.raises(ResourceNotFoundError):
        await connection.get_call_properties()


async def test_transfer_to_acs_user_with_transferee_and_operation_callback(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    connection = client.get_call_connection(call.call_connection_id)

    await connection.transfer_call_to_participant(
        CommunicationUserIdentifier(ACS_USER),
        transferee=PhoneNumberIdentifier(CALLER),
        operation_context="to-user",
        operation_callback_url=sink.url("/operations"),
        sip_headers={"X-MS-Custom-ticket": "42"},
    )
    await emulator.wait_for(lambda: "CallDisconnected" in sink.event_types())

    body = _assert_signed(emulator)
    example = load_corpus(TRANSFER_EXAMPLE)["parameters"]["transferToParticipantRequest"]
    assert example.keys() <= body.keys()
    assert body["targetParticipant"] == {"rawId": ACS_USER, "communicationUser": {"id": ACS_USER}}
    assert body["transferee"] == {"rawId": f"4:{CALLER}", "phoneNumber": {"value": CALLER}}
    assert body["operationCallbackUri"] == sink.url("/operations")
    assert body["customCallingContext"]["sipHeaders"] == {"X-MS-Custom-ticket": "42"}
    assert sink.event_types("/operations") == ["CallTransferAccepted"]
    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected", "CallDisconnected"]
    data = sink.events("/operations")[0]["data"]
    assert data["transferTarget"] == {
        "kind": "communicationUser",
        "rawId": ACS_USER,
        "communicationUser": {"id": ACS_USER},
    }
    assert data["transferee"]["rawId"] == f"4:{CALLER}"
    assert data["transferee"]["kind"] == "phoneNumber"


async def test_transfer_to_teams_user_reports_its_raw_id(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    teams = MicrosoftTeamsUserIdentifier("0cbe2c6e-1d89-4b7e-8c1d-1c8d8f0e3a11")

    await client.get_call_connection(call.call_connection_id).transfer_call_to_participant(teams)
    await emulator.wait_for(lambda: "CallTransferAccepted" in sink.event_types())

    target = _by_type(sink, "CallTransferAccepted")["data"]["transferTarget"]
    assert target["kind"] == "microsoftTeamsUser"
    assert target["microsoftTeamsUser"]["userId"] == teams.properties["user_id"]
    assert target["rawId"] == teams.raw_id


async def test_rest_spec_transfer_example_gets_its_documented_answer(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    example = load_corpus(TRANSFER_EXAMPLE)
    request = copy.deepcopy(example["parameters"]["transferToParticipantRequest"])
    request["operationCallbackUri"] = sink.url("/operations")  # not app.contoso.com
    path = f"{_action_path(call, 'transferToParticipant')}?{API}"

    status, answer = await signed_request(emulator, "POST", path, json.dumps(request).encode())

    assert example["parameters"]["api-version"] == "2026-03-12"
    assert status == 202
    assert answer == example["responses"]["202"]["body"]
    await emulator.wait_for(lambda: sink.event_types("/operations") == ["CallTransferAccepted"])
    transferee = request["transferee"]["communicationUser"]["id"]
    assert sink.events("/operations")[0]["data"]["transferee"]["rawId"] == transferee


async def test_transfer_fault_posts_call_transfer_failed_and_the_call_stays_connected(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, handler: RecordingHandler
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.wait_for(lambda: "MediaStreamingStarted" in sink.event_types())
    connection = client.get_call_connection(call.call_connection_id)
    emulator.fail_next_transfer()

    result = await connection.transfer_call_to_participant(
        PhoneNumberIdentifier(AGENT), operation_context="xfer-fail"
    )
    await emulator.wait_for(lambda: "CallTransferFailed" in sink.event_types())
    await emulator.settle()

    assert result.operation_context == "xfer-fail"
    assert emulator.requests[-1].status == 202
    assert sink.event_types()[-1] == "CallTransferFailed"
    assert "CallDisconnected" not in sink.event_types()
    failed = _by_type(sink, "CallTransferFailed")
    assert failed["data"]["resultInformation"] == {
        "code": 500,
        "subCode": 7504,
        "message": "Action failed, the transfer could not be completed.",
    }
    assert failed["data"]["operationContext"] == "xfer-fail"
    failed_info = CallTransferFailed.deserialize(failed["data"]).result_information
    assert failed_info is not None
    assert failed_info.sub_code == 7504
    props = await connection.get_call_properties()
    assert props.call_connection_state == "connected"
    assert call.media_state == "active"
    assert handler.log == [("start", call.call_connection_id)]  # the stream was never closed
    # Still a working call: a second transfer goes through.
    await connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT))
    await emulator.wait_for(lambda: "CallDisconnected" in sink.event_types())


async def test_transfer_failure_resultinformation_is_configurable(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    emulator.fail_next_transfer(code=408, sub_code=7503, message="Transfer target did not answer.")

    await client.get_call_connection(call.call_connection_id).transfer_call_to_participant(
        PhoneNumberIdentifier(AGENT)
    )
    await emulator.wait_for(lambda: "CallTransferFailed" in sink.event_types())

    result = _by_type(sink, "CallTransferFailed")["data"]["resultInformation"]
    assert result == {"code": 408, "subCode": 7503, "message": "Transfer target did not answer."}


async def test_transfer_status_faults_reach_the_sdk(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    connection = client.get_call_connection(call.call_connection_id)
    emulator.add_fault("transferToParticipant", status=403, error_code="8546")

    with pytest.raises(HttpResponseError) as caught:
        await connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT))

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "8546"
    assert call.state == "connected"
    # A 500 is retried by the SDK with the same Repeatability-Request-ID, then succeeds once.
    emulator.add_fault("transferToParticipant", status=500)
    await connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT))
    first, retry = emulator.requests[-2:]
    assert (first.status, retry.status) == (500, 202)
    request_id = first.headers["Repeatability-Request-ID"]
    assert retry.headers["Repeatability-Request-ID"] == request_id
    await emulator.wait_for(lambda: "CallDisconnected" in sink.event_types())
    assert sink.event_types().count("CallTransferAccepted") == 1


async def test_transfer_replayed_with_the_same_request_id_transfers_once(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    path = f"{_action_path(call, 'transferToParticipant')}?{API}"
    body = json.dumps({"targetParticipant": {"phoneNumber": {"value": AGENT}}}).encode()
    retry = {"Repeatability-Request-ID": "1f0c3c9e-3a57-4f59-9d35-bd8b1c7a4b1e"}

    first = await signed_request(emulator, "POST", path, body, extra_headers=retry)
    second = await signed_request(emulator, "POST", path, body, extra_headers=retry)
    await emulator.settle()

    assert first == second == (202, {})
    assert sink.event_types().count("CallTransferAccepted") == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (None, "targetParticipant is required"),
        ({"phoneNumber": {"value": "15550100300"}}, "E.164"),
        ({"communicationUser": {}}, "communicationUser.id"),
        ({"kind": "communicationUser", "phoneNumber": {"value": AGENT}}, "communicationUser.id"),
        ({"phoneNumber": {"value": AGENT}, "communicationUser": {"id": ACS_USER}}, "exactly one"),
    ],
)
async def test_transfer_with_a_bad_target_is_a_400(
    emulator: AcsEmulator,
    client: CallAutomationClient,
    sink: HttpSink,
    target: dict[str, Any] | None,
    message: str,
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    path = f"{_action_path(call, 'transferToParticipant')}?{API}"
    body = {} if target is None else {"targetParticipant": target}

    status, answer = await signed_request(emulator, "POST", path, json.dumps(body).encode())

    assert status == 400
    assert answer["error"]["code"] == "BadRequest"
    assert message in answer["error"]["message"]
    assert call.state == "connected"


async def test_send_dtmf_answers_202_then_completed_with_the_operation_context(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    connection = client.get_call_connection(call.call_connection_id)
    tones = [DtmfTone.ONE, DtmfTone.TWO, DtmfTone.POUND, DtmfTone.ASTERISK, DtmfTone.A]

    result = await connection.send_dtmf_tones(
        tones, PhoneNumberIdentifier(CALLER), operation_context="dtmf-1"
    )
    await emulator.wait_for(lambda: "SendDtmfTonesCompleted" in sink.event_types())

    assert result.operation_context == "dtmf-1"
    record = emulator.requests[-1]
    assert (record.path, record.query, record.status) == (
        _action_path(call, "sendDtmfTones"),
        {"api-version": "2026-03-12"},
        202,
    )
    assert "Repeatability-Request-ID" in record.headers
    assert _assert_signed(emulator) == {
        "tones": ["one", "two", "pound", "asterisk", "a"],
        "targetParticipant": {"rawId": f"4:{CALLER}", "phoneNumber": {"value": CALLER}},
        "operationContext": "dtmf-1",
    }
    completed = _by_type(sink, "SendDtmfTonesCompleted")
    _assert_shaped_like(completed, DTMF_COMPLETED_EVENT, call)
    assert completed["data"]["operationContext"] == "dtmf-1"
    expected = load_corpus(DTMF_COMPLETED_EVENT)["data"]["resultInformation"]
    assert completed["data"]["resultInformation"] == expected
    assert SendDtmfTonesCompleted.deserialize(completed["data"]).operation_context == "dtmf-1"
    assert call.sent_tones == ["one", "two", "pound", "asterisk", "a"]
    assert call.state == "connected"


async def test_rest_spec_send_dtmf_example_gets_its_documented_answer(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    example = load_corpus(DTMF_EXAMPLE)
    request = copy.deepcopy(example["parameters"]["sendDtmfTonesRequest"])
    request["operationCallbackUri"] = sink.url("/operations")
    path = f"{_action_path(call, 'sendDtmfTones')}?{API}"

    status, answer = await signed_request(emulator, "POST", path, json.dumps(request).encode())

    assert status == 202
    assert answer == example["responses"]["202"]["body"]
    await emulator.wait_for(lambda: sink.event_types("/operations") == ["SendDtmfTonesCompleted"])
    completed = sink.events("/operations")[0]["data"]
    assert completed["operationContext"] == request["operationContext"]
    assert call.sent_tones == ["zero"]


async def test_send_dtmf_fault_posts_send_dtmf_tones_failed(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    emulator.fail_next_send_dtmf()

    await client.get_call_connection(call.call_connection_id).send_dtmf_tones(
        ["nine"], PhoneNumberIdentifier(CALLER), operation_context="dtmf-fail"
    )
    await emulator.wait_for(lambda: "SendDtmfTonesFailed" in sink.event_types())

    failed = _by_type(sink, "SendDtmfTonesFailed")
    _assert_shaped_like(failed, DTMF_FAILED_EVENT, call)
    assert failed["data"]["operationContext"] == "dtmf-fail"
    assert failed["data"]["resultInformation"]["code"] == 500
    dtmf_info = SendDtmfTonesFailed.deserialize(failed["data"]).result_information
    assert dtmf_info is not None
    assert dtmf_info.code == 500
    assert call.state == "connected"


async def test_send_dtmf_status_fault_reaches_the_sdk(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    emulator.add_fault("sendDtmfTones", status=400, error_code="8523")

    with pytest.raises(HttpResponseError) as caught:
        await client.get_call_connection(call.call_connection_id).send_dtmf_tones(
            ["one"], PhoneNumberIdentifier(CALLER)
        )

    assert caught.value.status_code == 400
    assert call.sent_tones == []


@pytest.mark.parametrize("tones", [["one", "hash"], ["1"], [], ["eleven"]])
async def test_invalid_tones_are_a_400(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, tones: list[str]
) -> None:
    _, call = await answer_incoming(emulator, client, sink)

    with pytest.raises(HttpResponseError) as caught:
        await client.get_call_connection(call.call_connection_id).send_dtmf_tones(
            tones, PhoneNumberIdentifier(CALLER)
        )
    await emulator.settle()

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadRequest"
    assert "tone" in str(caught.value.error.message)
    assert emulator.requests[-1].status == 400
    assert sink.event_types() == ["ParticipantsUpdated", "CallConnected"]
    assert call.sent_tones == []


async def test_actions_on_a_hung_up_call_are_refused_like_media_actions(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))
    connection = client.get_call_connection(call.call_connection_id)
    await connection.hang_up(is_for_everyone=True)

    refusals = []
    for action in (
        connection.start_media_streaming(),
        connection.send_dtmf_tones(["one"], PhoneNumberIdentifier(CALLER)),
        connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT)),
    ):
        with pytest.raises(ResourceNotFoundError) as caught:
            await action
        assert caught.value.error is not None
        refusals.append((caught.value.status_code, caught.value.error.code))

    assert refusals == [(404, "8522")] * 3


async def test_actions_before_the_call_is_established_are_8501(
    client: CallAutomationClient, sink: HttpSink
) -> None:
    async with AcsEmulator(connect_delay_s=30.0) as slow:
        credential = AzureKeyCredential(slow.access_key)
        async with CallAutomationClient(slow.endpoint, credential) as sdk:
            props = await sdk.create_call(
                PhoneNumberIdentifier(AGENT),
                sink.url(),
                source_caller_id_number=PhoneNumberIdentifier("+18005550100"),
            )
            assert props.call_connection_id is not None
            connection = sdk.get_call_connection(props.call_connection_id)
            refusals = []
            for action in (
                connection.send_dtmf_tones(["one"], PhoneNumberIdentifier(AGENT)),
                connection.transfer_call_to_participant(PhoneNumberIdentifier(CALLER)),
            ):
                with pytest.raises(HttpResponseError) as caught:
                    await action
                assert caught.value.error is not None
                refusals.append((caught.value.status_code, caught.value.error.code))

    assert refusals == [(400, "8501"), (400, "8501")]


async def test_actions_during_a_transfer_are_8501_and_get_reports_transferring(
    client: CallAutomationClient, sink: HttpSink
) -> None:
    async with AcsEmulator(transfer_delay_s=0.3) as slow:
        credential = AzureKeyCredential(slow.access_key)
        async with CallAutomationClient(slow.endpoint, credential) as sdk:
            _, call = await answer_incoming(slow, sdk, sink)
            connection = sdk.get_call_connection(call.call_connection_id)
            await connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT))

            props = await connection.get_call_properties()
            with pytest.raises(HttpResponseError) as dtmf:
                await connection.send_dtmf_tones(["one"], PhoneNumberIdentifier(CALLER))
            with pytest.raises(HttpResponseError) as again:
                await connection.transfer_call_to_participant(PhoneNumberIdentifier(AGENT))
            await slow.wait_for(lambda: "CallDisconnected" in sink.event_types())

    assert props.call_connection_state == "transferring"
    for caught in (dtmf, again):
        assert caught.value.status_code == 400
        assert caught.value.error is not None
        assert caught.value.error.code == "8501"
    assert sink.event_types().count("CallTransferAccepted") == 1


async def test_sync_client_sends_dtmf_and_transfers(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)

    def drive() -> tuple[str | None, str | None]:
        credential = AzureKeyCredential(emulator.access_key)
        with SyncClient(emulator.endpoint, credential, retry_total=0) as sdk:
            connection = sdk.get_call_connection(call.call_connection_id)
            dtmf = connection.send_dtmf_tones(
                ["five", "pound"], CommunicationUserIdentifier(ACS_USER), operation_context="s-1"
            )
            transfer = connection.transfer_call_to_participant(
                PhoneNumberIdentifier(AGENT), operation_context="s-2"
            )
            return dtmf.operation_context, transfer.operation_context

    contexts = await asyncio.to_thread(drive)
    await emulator.wait_for(lambda: "CallDisconnected" in sink.event_types())

    assert contexts == ("s-1", "s-2")
    assert [r.status for r in emulator.requests[-2:]] == [202, 202]
    assert sink.event_types()[-3:] == [
        "SendDtmfTonesCompleted",
        "CallTransferAccepted",
        "CallDisconnected",
    ]
    assert [e["data"].get("operationContext") for e in sink.events()[-3:-1]] == ["s-1", "s-2"]
