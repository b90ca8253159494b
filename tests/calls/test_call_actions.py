"""A backend's CallActions: through the SDK to the emulator, within TRANSFER_TARGETS, outcomes
delivered back to the backend through `receive`."""

from __future__ import annotations

import asyncio

import pytest

from app.backends.base import (
    ActionFailed,
    CallActions,
    CallContext,
    CallEventIn,
    InboundEvent,
    MediaOutput,
)
from app.emulator import AcsEmulator
from tests.conftest import AppFactory, answered_call, call_state

TARGETS = {"sales": "+14255550100", "support": "8:acs:support_desk"}


class ActingBackend:
    """Keeps the call's actions and every call event it is told of."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.actions: CallActions | None = None
        self.opened = asyncio.Event()
        self.events: list[CallEventIn] = []

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self.actions = actions
        self.opened.set()

    async def receive(self, event: InboundEvent) -> None:
        if isinstance(event, CallEventIn):
            self.events.append(event)

    async def close(self) -> None:
        return None


async def _opened(backend: ActingBackend) -> CallActions:
    await asyncio.wait_for(backend.opened.wait(), 10)
    assert backend.actions is not None
    return backend.actions


async def test_a_configured_transfer_reaches_acs_and_ends_the_call(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ActingBackend()
    async with start_app(transfer_targets=TARGETS) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected")
        actions = await _opened(backend)
        accepted = await actions.transfer("sales")
        assert accepted.action == "transfer"
        [sent] = [r for r in emulator.requests if r.path.endswith(":transferToParticipant")]
        assert sent.body["targetParticipant"]["phoneNumber"]["value"] == "+14255550100"
        # ACS ends the media stream as it accepts: the record keeps the outcome.
        record = await call_state(live, call_id, connection_state="disconnected")
        actions_kept = record["actions"]
        assert isinstance(actions_kept, list)
        [kept] = actions_kept
        assert (kept["detail"], kept["requested_by"], kept["outcome"]) == (
            "sales",
            "agent",
            "accepted",
        )


async def test_a_failed_transfer_is_told_to_the_backend_and_the_call_goes_on(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ActingBackend()
    async with start_app(transfer_targets=TARGETS) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected")
        actions = await _opened(backend)
        emulator.fail_next_transfer(message="the callee is busy")
        accepted = await actions.transfer("support")
        for _ in range(200):
            if backend.events:
                break
            await asyncio.sleep(0.02)
        [event] = backend.events
        assert event.name == "CallTransferFailed"
        assert event.data["operation_context"] == accepted.operation_context
        assert event.data["message"] == "the callee is busy"
        record = await call_state(live, call_id, connection_state="connected")
        actions_kept = record["actions"]
        assert isinstance(actions_kept, list)
        [kept] = actions_kept
        assert kept["outcome"] == "failed"


@pytest.mark.parametrize("target", ["+19005550199", "premium", "8:acs:someone_else"])
async def test_an_unconfigured_destination_is_refused_without_any_request(
    start_app: AppFactory, emulator: AcsEmulator, target: str
) -> None:
    backend = ActingBackend()
    async with start_app(transfer_targets=TARGETS) as live:
        live.services.backend_factory = lambda settings: backend
        await answered_call(live, emulator)
        actions = await _opened(backend)
        asked = len(emulator.requests)
        with pytest.raises(ActionFailed) as refused:
            await actions.transfer(target)
        assert refused.value.code == "destination_not_allowed"
        assert "sales, support" in refused.value.message
        assert len(emulator.requests) == asked


async def test_dtmf_and_hang_up_from_the_backend(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ActingBackend()
    async with start_app() as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected")
        actions = await _opened(backend)
        sent = await actions.send_dtmf("9#")
        for _ in range(200):
            if backend.events:
                break
            await asyncio.sleep(0.02)
        assert [(e.name, e.data["operation_context"]) for e in backend.events] == [
            ("SendDtmfTonesCompleted", sent.operation_context)
        ]
        with pytest.raises(ActionFailed) as bad:
            await actions.send_dtmf("9x")
        assert bad.value.code == "invalid_tones"
        await actions.hang_up()
        await call_state(live, call_id, connection_state="disconnected")
