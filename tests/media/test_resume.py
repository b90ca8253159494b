"""A call's media socket that drops while streaming is on parks its backend: ACS's new socket
for the call within MEDIA_RESUME_WINDOW_S takes it over (same backend, same conversation);
after the window, or when the media was stopped, the backend is closed once."""

from __future__ import annotations

import asyncio

from app.backends.base import (
    AudioIn,
    CallActions,
    CallContext,
    CallEventIn,
    InboundEvent,
    MediaOutput,
)
from app.emulator import AcsEmulator
from tests.conftest import (
    AppFactory,
    LiveApp,
    StreamFactory,
    answered_call,
    call_state,
    media_client,
)


class ResumeBackend:
    """Echoes the caller and records what it is told."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.events: list[str] = []
        self.frames = 0
        self.frames_after_resume = 0
        self._output: MediaOutput | None = None

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self.opened += 1
        self._output = output

    async def receive(self, event: InboundEvent) -> None:
        if isinstance(event, CallEventIn):
            self.events.append(event.name)
        elif type(event) is AudioIn:
            self.frames += 1
            if "MediaStreamResumed" in self.events:
                self.frames_after_resume += 1
            assert self._output is not None
            await self._output.play(event.pcm)

    async def close(self) -> None:
        self.closed += 1


def _media(record: dict[str, object]) -> dict[str, object]:
    media = record["media"]
    assert isinstance(media, dict)
    return media


async def _media_when(live: LiveApp, call_id: str, **expected: object) -> dict[str, object]:
    """Poll the call's `media` until its fields equal `expected` (state is written behind)."""
    media: dict[str, object] = {}
    for _ in range(200):
        media = _media((await live.client.get(f"/api/calls/{call_id}")).json())
        if all(media.get(k) == v for k, v in expected.items()):
            return media
        await asyncio.sleep(0.02)
    raise AssertionError(f"media never reached {expected}: {media}")


async def _streaming_call(live_app: LiveApp, emulator: AcsEmulator) -> str:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    return call_id


async def test_a_dropped_stream_re_established_in_the_window_keeps_its_backend(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ResumeBackend()
    async with start_app(media_resume_window_s=5) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await _streaming_call(live, emulator)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: backend.frames >= 10)
        stream.drop()
        await stream.wait_for(lambda s: backend.frames_after_resume >= 10, timeout=5)
        assert stream.connections == 2
        assert stream.close_codes == [1006]
        assert (backend.opened, backend.closed) == (1, 0)
        assert backend.events == ["MediaStreamInterrupted", "MediaStreamResumed"]
        await stream.wait_for(lambda s: any(r.connection == 1 for r in s.audio_received))
        await _media_when(live, call_id, connected=True)
        await emulator.remote_hang_up(call_id)
        await stream.wait_for(lambda s: backend.closed == 1, timeout=5)
    assert (backend.opened, backend.closed) == (1, 1)


async def test_a_stream_not_back_within_the_window_closes_its_backend_once(
    start_app: AppFactory, emulator: AcsEmulator, open_stream: StreamFactory
) -> None:
    backends: list[ResumeBackend] = []

    def new_backend(settings: object) -> ResumeBackend:
        backends.append(ResumeBackend())
        return backends[-1]

    async with start_app(media_resume_window_s=0.5) as live:
        live.services.backend_factory = new_backend
        call_id = await _streaming_call(live, emulator)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: backends and backends[0].frames >= 5)
        stream.reestablish = False  # this time ACS does not come back in time
        stream.drop()
        await stream.wait_for(lambda s: backends[0].closed == 1, timeout=3)
        assert backends[0].events == ["MediaStreamInterrupted"]
        media = await _media_when(live, call_id, connected=False)
        assert "not re-established" in str(media["close_reason"])
        async with open_stream(live, call_connection_id=call_id) as late:
            await late.wait_for(lambda s: len(backends) == 2 and backends[1].frames >= 5)
        assert [b.opened for b in backends] == [1, 1]
        assert backends[0].closed == 1


async def test_a_stream_stopped_through_the_control_api_is_not_parked(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ResumeBackend()
    async with start_app(media_resume_window_s=60) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await _streaming_call(live, emulator)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: backend.frames >= 5)
        response = await live.client.post(f"/api/calls/{call_id}/media/stop")
        assert response.status_code in (200, 202), response.text
        await stream.wait_for(lambda s: backend.closed == 1, timeout=2)
        assert backend.events == []


async def test_a_hang_up_while_parked_closes_the_backend_at_once(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    backend = ResumeBackend()
    async with start_app(media_resume_window_s=60) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await _streaming_call(live, emulator)
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: backend.frames >= 5)
        # ACS ends the socket first, then MediaStreamingStopped and CallDisconnected follow.
        await emulator.remote_hang_up(call_id)
        await stream.wait_for(lambda s: backend.closed == 1, timeout=3)


async def test_a_new_socket_replaces_one_still_open_and_keeps_the_backend(
    start_app: AppFactory, emulator: AcsEmulator, open_stream: StreamFactory
) -> None:
    backend = ResumeBackend()
    async with start_app(media_resume_window_s=5) as live:
        live.services.backend_factory = lambda settings: backend
        call_id = await _streaming_call(live, emulator)
        old = media_client(emulator).streams[call_id]
        await old.wait_for(lambda s: backend.frames >= 5)
        async with open_stream(live, call_connection_id=call_id) as new:
            await old.wait_closed(timeout=3)
            assert old.close_code == 1000
            assert old.close_reason == "replaced by a new media socket"
            await new.wait_for(lambda s: backend.frames_after_resume >= 5 and s.audio_received)
            assert (backend.opened, backend.closed) == (1, 0)
            assert backend.events == ["MediaStreamInterrupted", "MediaStreamResumed"]
