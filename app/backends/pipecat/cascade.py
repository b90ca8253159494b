"""The bot shipped with the project (PIPECAT_BOT unset)."""

from __future__ import annotations

import functools

from app.backends.base import CallContext
from app.backends.pipecat.backend import Bot
from app.backends.pipecat.transport import AcsTransport
from app.settings import Settings


def bind_settings(bot: Bot, settings: Settings) -> Bot:
    async def run(transport: AcsTransport, call: CallContext) -> None:
        await bot(transport, call, settings)  # type: ignore[call-arg]

    return functools.wraps(bot)(run)


async def run_bot(transport: AcsTransport, call: CallContext, settings: Settings) -> None:
    raise NotImplementedError
