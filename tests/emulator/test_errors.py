"""Refusals and injected faults, as the SDK sees them: status codes, error bodies, retries."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from app.emulator import AcsEmulator
from app.emulator.hmac_auth import http_date
from tests.emulator.conftest import HttpSink, answer_incoming, media_options, signed_request

ANSWER_PATH = "/calling/callConnections:answer?api-version=2026-03-12"


async def test_unknown_call_maps_to_resource_not_found(
    emulator: AcsEmulator, client: CallAutomationClient
) -> None:
    connection = client.get_call_connection("00000000-0000-0000-0000-000000000000")

    with pytest.raises(ResourceNotFoundError) as caught:
        await connection.get_call_properties()

    assert caught.value.status_code == 404
    assert emulator.requests[-1].status == 404


async def test_hung_up_call_is_not_found(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)
    connection = client.get_call_connection(call.call_connection_id)
    await connection.hang_up(is_for_everyone=False)

    with pytest.raises(ResourceNotFoundError):
        await connection.get_call_properties()


async def test_wrong_key_is_refused_with_client_authentication_error(
    emulator: AcsEmulator,
) -> None:
    wrong_key = base64.b64encode(b"k" * 32).decode()
    async with CallAutomationClient(emulator.endpoint, AzureKeyCredential(wrong_key)) as sdk:
        with pytest.raises(ClientAuthenticationError) as caught:
            await sdk.get_call_connection("any").get_call_properties()

    assert caught.value.status_code == 401
    assert emulator.requests[-1].status == 401


async def test_tampered_body_is_refused_401(emulator: AcsEmulator, sink: HttpSink) -> None:
    offer = await emulator.place_incoming_call(sink.url("/incoming"))
    signed = json.dumps({"incomingCallContext": offer.incoming_call_context, "callbackUri": "x"})
    tampered = signed.replace('"x"', '"https://attacker.example/cb"')

    status, body = await signed_request(
        emulator, "POST", ANSWER_PATH, signed.encode(), sent_body=tampered.encode()
    )

    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    assert "x-ms-content-sha256" in body["error"]["message"]
    assert emulator.calls == {}


async def test_stale_date_is_refused_401(emulator: AcsEmulator) -> None:
    stale = http_date(datetime.now(UTC) - timedelta(minutes=6))
    path = "/calling/callConnections/any?api-version=2026-03-12"

    status, body = await signed_request(emulator, "GET", path, date=stale)

    assert status == 401
    assert "5 minutes" in body["error"]["message"]


async def test_invalid_json_body_is_a_400_with_an_error_body(emulator: AcsEmulator) -> None:
    status, body = await signed_request(emulator, "POST", ANSWER_PATH, b"{not json")

    assert status == 400
    assert body["error"]["code"] == "BadRequest"


async def test_missing_api_version_is_a_400(emulator: AcsEmulator) -> None:
    status, body = await signed_request(emulator, "GET", "/calling/callConnections/any")

    assert status == 400
    assert body["error"]["code"] == "UnsupportedApiVersion"


async def test_unknown_incoming_call_context_is_a_400(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await client.answer_call("not-a-context", sink.url())

    assert caught.value.status_code == 400


async def test_answering_an_answered_call_again_is_a_409(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url("/incoming"))
    await client.answer_call(offer.incoming_call_context, sink.url())

    with pytest.raises(ResourceExistsError):
        await client.answer_call(offer.incoming_call_context, sink.url())


async def test_duplicate_repeatability_request_id_returns_the_same_call(
    emulator: AcsEmulator, sink: HttpSink
) -> None:
    offer = await emulator.place_incoming_call(sink.url("/incoming"))
    body = json.dumps({"incomingCallContext": offer.incoming_call_context, "callbackUri": "x"})
    retry = {"Repeatability-Request-ID": "9d0b1f9e-5a57-4f59-9d35-bd8b1c7a4b1e"}

    first = await signed_request(emulator, "POST", ANSWER_PATH, body.encode(), extra_headers=retry)
    second = await signed_request(emulator, "POST", ANSWER_PATH, body.encode(), extra_headers=retry)

    assert first == second
    assert first[0] == 200
    assert len(emulator.calls) == 1


async def test_double_start_is_a_409(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options())

    with pytest.raises(ResourceExistsError):
        await client.get_call_connection(call.call_connection_id).start_media_streaming()


async def test_stop_when_not_streaming_is_a_409(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))

    with pytest.raises(ResourceExistsError):
        await client.get_call_connection(call.call_connection_id).stop_media_streaming()


async def test_start_without_media_options_is_a_400(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink)

    with pytest.raises(HttpResponseError) as caught:
        await client.get_call_connection(call.call_connection_id).start_media_streaming()

    assert caught.value.status_code == 400


async def test_fault_500_then_success_is_retried_by_the_sdk(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    emulator.add_fault("answer", status=500, times=2)

    _, call = await answer_incoming(emulator, client, sink)

    answers = [r for r in emulator.requests if r.path.endswith(":answer")]
    assert [r.status for r in answers] == [500, 500, 200]
    assert len({r.headers["Repeatability-Request-ID"] for r in answers}) == 1
    assert list(emulator.calls) == [call.call_connection_id]


async def test_fault_answers_its_error_code_and_body(
    emulator: AcsEmulator, client: CallAutomationClient
) -> None:
    emulator.add_fault("get", status=403, error_code="8546")

    with pytest.raises(HttpResponseError) as caught:
        await client.get_call_connection("any").get_call_properties()

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "8546"


async def test_retry_after_makes_the_sdk_retry_a_post(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    _, call = await answer_incoming(emulator, client, sink, media=media_options(start=False))
    # 429 on a POST is retried only because of the Retry-After header.
    emulator.add_fault("startMediaStreaming", status=429, retry_after=0.01)

    await client.get_call_connection(call.call_connection_id).start_media_streaming()

    starts = [r.status for r in emulator.requests if r.path.endswith(":startMediaStreaming")]
    assert starts == [429, 202]


async def test_fault_delay_only_slows_the_answer(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    emulator.add_fault("answer", status=200, delay_s=0.01)

    props, _ = await answer_incoming(emulator, client, sink)

    assert props.call_connection_state == "connected"
    assert emulator.requests[-1].status == 200


async def test_failed_media_start_posts_media_streaming_failed_8603(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink
) -> None:
    emulator.fail_next_media_start("streamConnectionUnsuccessful")

    _, call = await answer_incoming(emulator, client, sink, media=media_options())
    await emulator.wait_for(lambda: len(sink.posts()) == 3)

    failed = sink.events()[-1]
    assert failed["type"] == "Microsoft.Communication.MediaStreamingFailed"
    assert failed["data"]["resultInformation"]["code"] == 500
    assert failed["data"]["resultInformation"]["subCode"] == 8603
    update = failed["data"]["mediaStreamingUpdate"]
    assert update["mediaStreamingStatus"] == "mediaStreamingFailed"
    assert update["mediaStreamingStatusDetails"] == "streamConnectionUnsuccessful"
    assert call.media_state == "inactive"


def test_unknown_fault_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        AcsEmulator().add_fault("transfer")
