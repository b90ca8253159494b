"""Running the emulator as a process (`acs-emulator`): serve until cancelled."""

from __future__ import annotations

import asyncio
import logging

from app.emulator.media_handler import MediaHandler, TokenSource
from app.emulator.server import AcsEmulator

log = logging.getLogger(__name__)


async def run_emulator(
    host: str,
    port: int,
    access_key: str | None,
    *,
    media_handler: MediaHandler | None = None,
    token_source: TokenSource | None = None,
    advertised_host: str | None = None,
    started: asyncio.Future[AcsEmulator] | None = None,
) -> None:
    """Serve an emulator on `host:port` until cancelled.

    `advertised_host` is the `host[:port]` clients put in their endpoint (and sign) when it is
    not `host:port`, e.g. behind a container's port mapping. `started` resolves once listening.
    """
    emulator = AcsEmulator(
        access_key=access_key,
        host=host,
        port=port,
        media_handler=media_handler,
        token_source=token_source,
        advertised_host=advertised_host,
    )
    async with emulator:
        if access_key is None:
            # A generated key is useless unless shown: this is a local development tool.
            log.warning("ACS emulator connection string: %s", emulator.connection_string)
        else:
            log.warning("ACS emulator listening at %s (key as configured)", emulator.endpoint)
        if started is not None and not started.done():
            started.set_result(emulator)
        await asyncio.Event().wait()
