"""The emulator's media client re-establishes a stream after an abnormal close, as ACS does:
a new socket, AudioMetadata again, and MediaStreamingStarted with streamConnectionReestablished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.emulator import AcsEmulator
from app.emulator.media_client import MediaClient
from app.security.signing import TokenSigner
from tests.conftest import AppFactory, answered_call, call_state, media_client


@pytest.fixture
async def emulator(signer: TokenSigner) -> AsyncIterator[AcsEmulator]:
    """Unlike this folder's emulator, one whose media client plays the caller on every call."""
    emu = AcsEmulator(media_handler=MediaClient(token_source=signer), token_source=signer)
    emu.resource_id = signer.audience
    async with emu:
        yield emu


async def test_a_dropped_stream_is_re_established_with_its_callback(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(media_resume_window_s=5) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: s.audio_received)
        stream.drop()
        await stream.wait_for(lambda s: s.connections == 2)
        assert stream.close_codes == [1006]
        assert not stream.closed
        for _ in range(100):
            details = [
                event.get("data", {}).get("mediaStreamingUpdate", {})
                for sent in emulator.callbacks
                for event in sent.events
            ]
            if any(
                d.get("mediaStreamingStatusDetails") == "streamConnectionReestablished"
                for d in details
            ):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no streamConnectionReestablished callback")
