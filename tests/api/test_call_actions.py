"""Transfer and DTMF through the control API: the real SDK against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.emulator import AcsEmulator
from tests.conftest import AppFactory, LiveApp, answered_call, call_state


def _actions(emulator: AcsEmulator, suffix: str) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith(suffix)]


async def _record(live: LiveApp, call_id: str) -> dict[str, Any]:
    record: dict[str, Any] = (await live.client.get(f"/api/calls/{call_id}")).json()
    return record


async def _eventually(live: LiveApp, call_id: str, check: Any) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for _ in range(200):
        record = await _record(live, call_id)
        if check(record):
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached: {record}")


async def test_a_transfer_goes_through_the_sdk_and_ends_the_call_for_the_bridge(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    response = await live_app.client.post(
        f"/api/calls/{call_id}/transfer", json={"target": "+14255550100"}
    )
    assert response.status_code == 202, response.text
    action = response.json()["action"]
    assert action["kind"] == "transfer"
    assert action["outcome"] == "requested"
    [sent] = _actions(emulator, ":transferToParticipant")
    assert sent.body["targetParticipant"]["phoneNumber"]["value"] == "+14255550100"
    assert sent.body["operationContext"] == action["operation_context"]
    headers = {name.lower(): value for name, value in sent.headers.items()}
    assert headers["authorization"].startswith("HMAC-SHA256")  # signed, as every ACS request
    record = await _eventually(live_app, call_id, lambda r: r["connection_state"] == "disconnected")
    [kept] = record["actions"]
    assert kept["outcome"] == "accepted"
    assert "CallTransferAccepted" in [e["type"] for e in record["recent_events"]]


async def test_dtmf_goes_to_the_caller_of_an_inbound_call(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    response = await live_app.client.post(f"/api/calls/{call_id}/dtmf", json={"tones": "12#*"})
    assert response.status_code == 202, response.text
    [sent] = _actions(emulator, ":sendDtmfTones")
    assert sent.body["tones"] == ["one", "two", "pound", "asterisk"]
    assert sent.body["targetParticipant"]["phoneNumber"]["value"] == "+14255550123"
    record = await _eventually(
        live_app, call_id, lambda r: r["actions"] and r["actions"][0]["outcome"] == "completed"
    )
    assert record["actions"][0]["detail"] == "12#*"
    assert record["connection_state"] == "connected"


@pytest.mark.parametrize(
    ("route", "body", "code"),
    [
        ("transfer", {"target": "+1 (425) 555-0100"}, "invalid_target"),
        ("transfer", {"target": "premium"}, "invalid_target"),
        ("dtmf", {"tones": "12x"}, "invalid_tones"),
    ],
)
async def test_a_malformed_target_or_tones_is_refused_before_any_request(
    live_app: LiveApp, emulator: AcsEmulator, route: str, body: dict[str, str], code: str
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    asked = len(emulator.requests)
    response = await live_app.client.post(f"/api/calls/{call_id}/{route}", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert len(emulator.requests) == asked


async def test_actions_on_an_unknown_or_ended_call_answer_404_and_409(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    missing = await live_app.client.post("/api/calls/nope/dtmf", json={"tones": "1"})
    assert missing.status_code == 404
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected")
    await live_app.client.delete(f"/api/calls/{call_id}")
    await call_state(live_app, call_id, connection_state="disconnected")
    ended = await live_app.client.post(
        f"/api/calls/{call_id}/transfer", json={"target": "+14255550100"}
    )
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "call_not_connected"


async def test_the_routes_need_the_control_key(start_app: AppFactory) -> None:
    async with start_app() as live:
        for route, body in (("transfer", {"target": "+14255550100"}), ("dtmf", {"tones": "1"})):
            response = await live.client.post(
                f"/api/calls/x/{route}", json=body, headers={"X-API-Key": "wrong"}
            )
            assert response.status_code == 401
