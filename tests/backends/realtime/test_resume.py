"""A re-established ACS stream resumes the same Realtime model session: no new connection to
the service and no new `session.update`, and the resumed caller's audio reaches that session."""

from __future__ import annotations

from app.emulator import AcsEmulator
from tests.backends.realtime.fake_server import FakeRealtime
from tests.conftest import AppFactory, answered_call, call_state, media_client


async def test_a_resumed_stream_keeps_its_model_session(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeRealtime
) -> None:
    async with start_app(
        media_backend="openai",
        openai_api_key="sk-resume",
        openai_base_url=fake.openai_base_url,
        media_resume_window_s=5,
    ) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        session = await fake.session()
        await session.wait_for_event("session.update")
        await session.wait_for(lambda s: len(s.appended) > 0)
        stream = media_client(emulator).streams[call_id]
        stream.drop()
        await stream.wait_for(lambda s: s.connections == 2)
        before = len(session.appended)
        await session.wait_for(lambda s: len(s.appended) > before + 24_000)
        assert len(fake.sessions) == 1
        assert len(session.of_type("session.update")) == 1
        assert not session.closed
