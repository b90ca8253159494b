"""Every call's final record, POSTed to CALL_END_WEBHOOK_URL when the call ends.

The call store tells the deliverer of each call that reached `disconnected` (the observed
store sees every change). One instance delivers each call: the one that wins the call's claim
in the store. It waits briefly for the media session's final write (counters, transcript), then
POSTs `{"event": "call.ended", "delivery_id", "call"}` signed afresh on each attempt, and retries
a timeout or a non-2xx answer with backoff until at least MIN_ATTEMPTS attempts and
CALL_END_WEBHOOK_RETRY_FOR_S have passed. What is not delivered is logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid

import httpx

from app.calls.models import CallRecord
from app.calls.store import CallStore, StoreUnavailable
from app.observability.metrics import Metrics
from app.settings import Settings
from app.webhooks.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)

CLAIM_TTL_S = 24 * 3600.0  # as long as the record may live: a call is delivered once
MIN_ATTEMPTS = 5
MAX_BACKOFF_S = 30.0
# How long the media session's final write (it follows ACS's disconnect by a moment) is awaited.
FINAL_WRITE_WAIT_S = 5.0
FINAL_WRITE_POLL_S = 0.05
_DELIVERY_NAMESPACE = uuid.UUID("6f1e2a52-4f0e-4f3c-9a55-0b6c2f3e7d11")


def delivery_id(call_connection_id: str) -> str:
    """The call's delivery id: the same on every attempt and every instance."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, call_connection_id))


class CallEndWebhook:
    """Delivers each ended call's record once; `drain()` waits for pending deliveries."""

    def __init__(
        self,
        url: str,
        secret: str,
        metrics: Metrics,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 10.0,
        retry_s: float = 2.0,
        retry_for_s: float = 60.0,
    ) -> None:
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._retry_for_s = retry_for_s
        self._metrics = metrics
        self._client = client
        self._store: CallStore | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics, client: httpx.AsyncClient
    ) -> CallEndWebhook | None:
        """The deliverer CALL_END_WEBHOOK_URL asks for; None when it is not set."""
        url, secret = settings.call_end_webhook_url, settings.call_end_webhook_secret
        if url is None or secret is None:
            return None
        return cls(
            str(url),
            secret.get_secret_value(),
            metrics,
            client,
            timeout_s=settings.call_end_webhook_timeout_s,
            retry_s=settings.call_end_webhook_retry_s,
            retry_for_s=settings.call_end_webhook_retry_for_s,
        )

    def attach(self, store: CallStore) -> None:
        """The store final records are read from (built after the deliverer observes it)."""
        self._store = store

    def call_ended(self, record: CallRecord) -> None:
        """The record reached `disconnected` (called by the store, on the event loop)."""
        call_id = record.call_connection_id
        if self._store is None or call_id in self._pending:
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(self._store, call_id), name=f"call-end-webhook:{call_id}"
        )
        self._pending[call_id] = task
        task.add_done_callback(lambda _: self._pending.pop(call_id, None))

    async def drain(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the deliveries under way (a stop signal arrived)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._pending:
            log.info("waiting for %d call-end webhook deliveries", len(self._pending))
        # Again while calls keep ending (the drain hung them up): theirs go out too.
        while self._pending and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._pending.values()), timeout=remaining)

    async def close(self) -> None:
        """Stop: deliveries still under way are given up, each logged and counted."""
        for call_id, task in list(self._pending.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._given_up(call_id, "the instance stopped before it was delivered")

    async def _deliver(self, store: CallStore, call_id: str) -> None:
        try:
            if not await store.claim(f"call-end:{call_id}", CLAIM_TTL_S):
                return  # another instance (or an earlier change here) delivers it
            record = await self._final_record(store, call_id)
        except StoreUnavailable as exc:
            self._given_up(call_id, f"the call store failed: {exc}")
            return
        if record is None:
            self._given_up(call_id, "its record is gone")
            return
        await self._post(call_id, self._body(record))

    async def _final_record(self, store: CallStore, call_id: str) -> CallRecord | None:
        record = await store.get(call_id)
        deadline = time.monotonic() + FINAL_WRITE_WAIT_S
        while record is not None and record.media.connected and time.monotonic() < deadline:
            await asyncio.sleep(FINAL_WRITE_POLL_S)
            record = await store.get(call_id)
        return record

    def _body(self, record: CallRecord) -> bytes:
        document = {
            "event": "call.ended",
            "delivery_id": delivery_id(record.call_connection_id),
            "call": record.model_dump(mode="json"),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    async def _post(self, call_id: str, body: bytes) -> None:
        started = time.monotonic()
        attempts = 0
        delay = self._retry_s
        while True:
            attempts += 1
            problem = await self._attempt(call_id, body)
            if problem is None:
                self._metrics.call_end_webhook("delivered")
                log.info(
                    "call record delivered (attempt %d)",
                    attempts,
                    extra={"call_connection_id": call_id},
                )
                return
            elapsed = time.monotonic() - started
            if attempts >= MIN_ATTEMPTS and elapsed >= self._retry_for_s:
                self._given_up(
                    call_id, f"{attempts} attempts over {elapsed:.0f} s, last: {problem}"
                )
                return
            log.warning(
                "call record delivery attempt %d failed (%s): retrying in %.1f s",
                attempts,
                problem,
                delay,
                extra={"call_connection_id": call_id},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _attempt(self, call_id: str, body: bytes) -> str | None:
        """None when the receiver took it (2xx), else why not."""
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id(call_id),
            # Signed at each attempt: a receiver may refuse old timestamps.
            SIGNATURE_HEADER: signature(self._secret, int(time.time()), body),
        }
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.TimeoutException:
            return "timed out"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}"
        if response.is_success:
            return None
        return f"answered {response.status_code}"

    def _given_up(self, call_id: str, why: str) -> None:
        self._metrics.call_end_webhook("failed")
        log.error(
            "call record NOT delivered to CALL_END_WEBHOOK_URL: %s",
            why,
            extra={"call_connection_id": call_id},
        )
