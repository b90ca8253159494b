"""What a Realtime backend's calls would load on the event loop is loaded at the app's start."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter: the test process has numpy loaded already. It opens the app's factory
# the way the app does, and says whether numpy and soxr were loaded before any call (16 <-> 24
# kHz is the polyphase filter's: soxr, for other ratios, stays out of memory).
_PROBE = """
import asyncio, sys
from contextlib import AsyncExitStack
from app.backends.realtime import open_openai_factory
from app.settings import Settings

async def main() -> None:
    settings = Settings(_env_file=None, openai_api_key="sk-test", media_audio_format=sys.argv[1])
    async with AsyncExitStack() as stack:
        await open_openai_factory(settings, stack)
        print("numpy" in sys.modules, "soxr" in sys.modules)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("audio_format", "loaded"),
    [("pcm16KMono", "True False"), ("pcm24KMono", "False False")],
)
def test_resampling_is_loaded_at_start_only_when_calls_will_resample(
    audio_format: str, loaded: str
) -> None:
    result = subprocess.run(  # noqa: S603 (our own interpreter and probe)
        [sys.executable, "-c", _PROBE, audio_format],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split("\n")[-2] == loaded
