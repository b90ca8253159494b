"""Faults: dropped sockets, fatal errors, an unreachable service, session renewal."""

from __future__ import annotations

import asyncio

from app.backends.base import AudioIn
from tests.backends.realtime.conftest import SERVICES, OpenBackend, Service
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, FakeSession, model_tone

pytestmark = SERVICES  # the same behaviour from every Realtime service
TEXT_TYPES = {"openai": "output_text", "voice-live": "text"}


async def _one_exchange(session: FakeSession) -> None:
    await session.wait_for_event("session.update")
    await session.caller_said("item_c1", "Do you deliver?")
    await session.start_response("resp_1")
    await session.audio("resp_1", "item_a1", model_tone(100))
    await session.finish_response("resp_1", "item_a1", "Yes, within the city.")


async def test_a_dropped_socket_reconnects_and_replays_config_and_transcripts(
    fake: FakeRealtime, open_backend: OpenBackend, service: Service
) -> None:
    async with open_backend() as (backend, output):
        first = await fake.session()
        await _one_exchange(first)
        await output.wait_for(lambda o: len(o.reported("transcript")) == 2)
        await first.drop()
        second = await fake.session(1)
        await second.wait_for(lambda s: len(s.of_type("conversation.item.create")) == 2)
        await backend.receive(AudioIn(model_tone(20)))  # one frame: one append
        await second.wait_for(lambda s: len(s.append_sizes) == 1)
    kinds = [event["type"] for event in second.received]
    assert kinds[:3] == ["session.update", "conversation.item.create", "conversation.item.create"]
    assert second.received[0] == first.received[0]
    assert [event["item"] for event in second.of_type("conversation.item.create")] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Do you deliver?"}],
        },
        {
            "type": "message",
            "role": "assistant",
            # Voice Live keeps the preview name of an assistant's text.
            "content": [{"type": TEXT_TYPES[service], "text": "Yes, within the city."}],
        },
    ]
    assert output.reported("reconnect")[0]["attempt"] == 1
    assert output.ended == []


async def test_a_drop_mid_response_stops_its_audio(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        output.heard = lambda item: 100.0
        first = await fake.session()
        await first.start_response("resp_1")
        await first.audio("resp_1", "item_a1", model_tone(500))
        await output.wait_for(lambda o: len(o.played["item_a1"]) == 500 * BYTES_PER_MS)
        await first.drop()
        await fake.session(1)
        await output.wait_for(lambda o: ("stop", None) in o.log)
    assert output.ended == []


async def test_fatal_error_event_reports_and_ends_the_media_session(
    fake: FakeRealtime, open_backend: OpenBackend, service: Service
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.error(
            "invalid_api_key", "Incorrect API key provided.", kind="invalid_request_error"
        )
        await output.wait_for(lambda o: len(o.ended) == 1)
    errors = output.reported("error")
    assert errors == [
        {
            "backend": service,
            "message": "invalid_api_key: Incorrect API key provided.",
            "fatal": True,
        }
    ]
    assert "invalid_api_key" in output.ended[0]
    assert len(fake.sessions) == 1  # no reconnect for a bad key


async def test_quota_exhausted_is_fatal(fake: FakeRealtime, open_backend: OpenBackend) -> None:
    async with open_backend() as (_, output):
        await (await fake.session()).error("insufficient_quota", kind="insufficient_quota")
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert output.reported("error")[0]["fatal"] is True


async def test_a_response_failed_for_quota_is_fatal(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.send(
            {
                "type": "response.done",
                "response": {
                    "id": "resp_1",
                    "object": "realtime.response",
                    "status": "failed",
                    "status_details": {
                        "type": "failed",
                        "error": {"type": "insufficient_quota", "code": "insufficient_quota"},
                    },
                    "output": [],
                },
            }
        )
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert "insufficient_quota" in output.ended[0]


async def test_a_refused_handshake_401_is_fatal_at_once(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    fake.refuse_status = 401
    async with open_backend() as (_, output):
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert "HTTP 401" in output.ended[0]
    assert len(fake.handshakes) == 1


async def test_an_unavailable_service_is_retried_then_ends_the_session(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    fake.refuse_status = 503
    async with open_backend() as (_, output):
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert len(fake.handshakes) == 4  # FAST_RECONNECT.attempts
    assert [r["attempt"] for r in output.reported("reconnect")] == [1, 2, 3, 4]
    assert output.reported("error")[-1]["fatal"] is True


async def test_the_service_recovering_before_the_last_attempt_keeps_the_call(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    fake.refuse_status = 503
    async with open_backend() as (_, output):
        await output.wait_for(lambda o: len(o.reported("reconnect")) == 2)
        fake.refuse_status = None
        session = await fake.session()
        await session.wait_for_event("session.update")
    assert output.ended == []


async def test_other_service_errors_are_reported_and_the_call_goes_on(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.error("invalid_value", "Something was off.")
        await output.wait_for(lambda o: len(o.reported("error")) == 1)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(100))
        await output.wait_for(lambda o: len(o.played["item_a1"]) > 0)
    assert output.reported("error") == [
        {"message": "Something was off.", "code": "invalid_value", "fatal": False}
    ]
    assert output.ended == []


async def test_session_is_renewed_between_turns_with_the_conversation_replayed(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(renew_after_s=0.3) as (_, output):
        first = await fake.session()
        await _one_exchange(first)
        second = await fake.session(1)
        await second.wait_for(lambda s: len(s.of_type("conversation.item.create")) == 2)
        await first.wait_for(lambda s: s.closed)
    assert second.received[0] == first.received[0]
    assert output.reported("reconnect") == []  # a renewal is not a fault
    assert output.ended == []


async def test_renewal_waits_while_the_model_is_speaking(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(renew_after_s=0.1) as (_, output):
        output.heard = lambda item: 0.0  # its audio is still playing
        first = await fake.session()
        await first.start_response("resp_1")
        await first.audio("resp_1", "item_a1", model_tone(300))
        await asyncio.sleep(0.3)
        assert len(fake.sessions) == 1
        output.heard = None  # played out
        await first.finish_response("resp_1", "item_a1", "Done.")
        await fake.session(1)


async def test_session_expired_from_the_service_opens_a_new_session(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        first = await fake.session()
        await first.error("session_expired", "Your session hit the maximum duration of 60 minutes.")
        second = await fake.session(1)
        await second.wait_for_event("session.update")
    assert output.reported("error") == []
    assert output.ended == []
