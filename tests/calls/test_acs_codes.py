"""ACS result codes explained where they appear: the record, its events, the log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from app.calls.acs_codes import TABLE_PATH, explain, explain_failure
from app.calls.deliveries import parse_callback_events
from app.calls.models import CallRecord
from app.calls.record_changes import apply_callback
from app.emulator import AcsEmulator
from tests.conftest import LiveApp, answered_call, call_state

CALL_ID = "06004980-19f4-465a-b630-76c371713dff"


def callback(name: str, result: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "source": f"calling/callConnections/{CALL_ID}",
        "type": f"Microsoft.Communication.{name}",
        "data": {"callConnectionId": CALL_ID, "resultInformation": result, **data},
        "time": "2025-05-06T16:31:54.8331644+00:00",
        "specversion": "1.0",
    }


def folded(item: dict[str, Any]) -> CallRecord:
    (event,) = parse_callback_events([item])
    record = apply_callback(event)(None)
    assert record is not None
    return record


@pytest.mark.parametrize(
    "sub_code",
    [8581, 8603, 8604, 8530, 8537, 8586, 8587, 7000, 8522, 8501, 8535, 7509],
)
def test_the_codes_users_meet_are_in_the_table(sub_code: int) -> None:
    found = explain(None, sub_code)
    assert found is not None
    assert found.meaning


def test_the_table_names_its_source() -> None:
    table = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    assert table["source"].startswith("https://learn.microsoft.com/")


def test_a_subcode_under_two_codes_is_told_apart_by_the_code() -> None:
    not_found, missing_config = explain(404, 8522), explain(405, 8522)
    assert not_found is not None
    assert missing_config is not None
    assert not_found.name != missing_config.name


def test_success_and_a_graceful_end_need_no_explanation() -> None:
    assert explain_failure(200, 0) is None
    assert explain_failure(200, 7000) is None
    assert explain_failure(200, 7015) is None
    assert explain_failure(400, 99999) is None


def test_media_streaming_failed_8581_is_explained_on_the_record() -> None:
    result = {"code": 400, "subCode": 8581, "message": "Transport url is not valid"}
    update = {
        "contentType": "Audio",
        "mediaStreamingStatus": "mediaStreamingFailed",
        "mediaStreamingStatusDetails": "initialWebSocketConnectionFailed",
    }
    record = folded(callback("MediaStreamingFailed", result, mediaStreamingUpdate=update))
    assert record.media_failure is not None
    assert record.media_failure.explanation is not None
    assert "Invalid Stream URL" in record.media_failure.explanation
    assert "--protocol auto" in record.media_failure.explanation
    assert record.recent_events[-1].detail is not None
    assert "Invalid Stream URL" in record.recent_events[-1].detail


def test_a_disconnect_reason_carries_the_explanation() -> None:
    result = {"code": 500, "subCode": 8537, "message": "Keep alive timeout"}
    record = folded(callback("CallDisconnected", result))
    assert record.disconnect_reason is not None
    assert "Keep Alive Timeout Reached" in record.disconnect_reason


def test_a_failed_transfer_outcome_carries_the_explanation() -> None:
    result = {"code": 400, "subCode": 8501, "message": "call not established"}
    record = folded(callback("CallTransferFailed", result))
    assert "Call Not Established" in (record.recent_events[-1].detail or "")


async def test_a_failed_media_start_is_explained_in_the_record_and_the_log(
    live_app: LiveApp, emulator: AcsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.calls.intake")
    emulator.fail_next_media_start("initialWebSocketConnectionFailed")
    call_id = await answered_call(live_app, emulator)
    record = await call_state(live_app, call_id, media_state="failed")
    failure = record["media_failure"]
    assert isinstance(failure, dict)
    assert str(failure["explanation"]).startswith("8603 Media Streaming Failed")
    logged = [r.getMessage() for r in caplog.records if r.name == "app.calls.intake"]
    assert f"MediaStreamingFailed for call {call_id}: 8603 Media Streaming Failed" in "\n".join(
        logged
    )


async def test_a_refused_request_is_explained_in_the_api_error(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    emulator.add_fault("stopMediaStreaming", status=400, error_code="8501")
    response = await live_app.client.post(f"/api/calls/{call_id}/media/stop")
    assert response.status_code == 502
    assert "8501 Action Not Supported: Call Not Established" in response.json()["error"]["message"]
