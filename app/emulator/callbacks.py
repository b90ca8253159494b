"""The callback sender: POSTs each call's events to its callback URL, one event per request, in
the order they were raised. A receiver that is down or slow is recorded, never raised."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from app.emulator.lanes import SerialLanes
from app.emulator.media_handler import TokenSource
from app.emulator.records import SentCallback

CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT_S = 10.0


class CallbackSender:
    """Sends callbacks in the background; `sent` grows as each POST completes."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sent: list[SentCallback],
        *,
        token_source: TokenSource | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._session = session
        self._sent = sent
        self._token_source = token_source
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._lanes = SerialLanes()

    def send(self, call_connection_id: str, url: str, event: dict[str, Any]) -> None:
        """Queue `event` for `url` behind the call's earlier events."""

        async def post() -> None:
            await self._post(url, [event])

        self._lanes.submit(call_connection_id, post)

    async def join(self) -> None:
        """Wait until every queued callback has been attempted."""
        await self._lanes.join()

    async def aclose(self) -> None:
        """Drop what is still queued and stop the sender."""
        await self._lanes.aclose()

    async def _post(self, url: str, events: list[dict[str, Any]]) -> None:
        record = SentCallback(url=url, events=events)
        headers = {"Content-Type": CONTENT_TYPE}
        if self._token_source is not None:
            headers["Authorization"] = f"Bearer {self._token_source.mint()}"
        try:
            async with self._session.post(
                url, data=json.dumps(events), headers=headers, timeout=self._timeout
            ) as response:
                await response.read()
                record.status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: aiohttp rejects a malformed URL before connecting.
            record.error = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            record.error = "cancelled: the emulator stopped"
            self._sent.append(record)
            raise
        self._sent.append(record)
