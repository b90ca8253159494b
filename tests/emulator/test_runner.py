"""`run_emulator`: the process entry point serves until cancelled."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import pytest
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ResourceNotFoundError

from app.emulator import AcsEmulator, run_emulator

KEY = base64.b64encode(b"r" * 32).decode()


async def test_run_emulator_serves_the_api_until_cancelled() -> None:
    started: asyncio.Future[AcsEmulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_emulator("127.0.0.1", 0, KEY, started=started))
    try:
        emulator = await asyncio.wait_for(started, 5)
        async with CallAutomationClient(emulator.endpoint, AzureKeyCredential(KEY)) as sdk:
            with pytest.raises(ResourceNotFoundError):
                await sdk.get_call_connection("missing").get_call_properties()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert emulator.requests[-1].status == 404
