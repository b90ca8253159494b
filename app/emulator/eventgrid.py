"""Event Grid's side of a webhook subscription: deliveries of IncomingCall events (at least once,
as an array, with the `aeg-*` headers) and the subscription validation handshake."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

from app.emulator import payloads
from app.emulator.records import DeliveryResult, WebhookValidation

Schema = Literal["eventgrid", "cloudevents"]
EVENTGRID_CONTENT_TYPE = "application/json"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
SUBSCRIPTION_NAME = "ACS-EMULATOR-INCOMING-CALL"
VALIDATION_ORIGIN = "eventgrid.azure.net"
TIMEOUT_S = 30.0  # how long Event Grid waits for a webhook to answer


class EventGridDelivery:
    """POSTs events to webhooks as Event Grid does, on the emulator's client session."""

    def __init__(self, session: aiohttp.ClientSession, *, topic: str) -> None:
        self._session = session
        self._topic = topic
        self._timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)

    async def deliver(
        self,
        url: str,
        event: dict[str, Any],
        *,
        schema: Schema,
        deliveries: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> list[DeliveryResult]:
        """Deliver the same event `deliveries` times (Event Grid is at-least-once)."""
        results = []
        for attempt in range(deliveries):
            sent_headers = _notification_headers(schema, attempt)
            sent_headers.update(headers or {})
            results.append(await self._post(url, [event], sent_headers))
        return results

    async def validate(self, url: str, *, schema: Schema) -> WebhookValidation:
        """Run the subscription handshake for `schema` against `url`."""
        if schema == "cloudevents":
            return await self._validate_cloudevents(url)
        code = str(uuid.uuid4())
        validation_url = f"https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/{SUBSCRIPTION_NAME}/validate?id={code}"
        event = payloads.subscription_validation_event(code, validation_url, topic=self._topic)
        headers = {
            "Content-Type": EVENTGRID_CONTENT_TYPE,
            "aeg-event-type": "SubscriptionValidation",
            "aeg-subscription-name": SUBSCRIPTION_NAME,
            "aeg-delivery-count": "0",
        }
        async with self._session.post(
            url, data=json.dumps([event]), headers=headers, timeout=self._timeout
        ) as response:
            body = await response.text()
            return WebhookValidation(
                schema="eventgrid",
                status=response.status,
                headers=dict(response.headers),
                body=body,
                validation_code=code,
                origin=None,
            )

    async def _validate_cloudevents(self, url: str) -> WebhookValidation:
        headers = {"WebHook-Request-Origin": VALIDATION_ORIGIN, "WebHook-Request-Rate": "120"}
        async with self._session.options(url, headers=headers, timeout=self._timeout) as response:
            body = await response.text()
            return WebhookValidation(
                schema="cloudevents",
                status=response.status,
                headers=dict(response.headers),
                body=body,
                validation_code=None,
                origin=VALIDATION_ORIGIN,
            )

    async def _post(
        self, url: str, body: list[dict[str, Any]], headers: dict[str, str]
    ) -> DeliveryResult:
        try:
            async with self._session.post(
                url, data=json.dumps(body), headers=headers, timeout=self._timeout
            ) as response:
                return DeliveryResult(status=response.status, body=await response.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Event Grid records the failure and retries later; the caller decides.
            return DeliveryResult(status=None, body="", error=f"{type(exc).__name__}: {exc}")


def _notification_headers(schema: Schema, attempt: int) -> dict[str, str]:
    cloudevents = schema == "cloudevents"
    return {
        "Content-Type": CLOUDEVENTS_CONTENT_TYPE if cloudevents else EVENTGRID_CONTENT_TYPE,
        "aeg-event-type": "Notification",
        "aeg-subscription-name": SUBSCRIPTION_NAME,
        "aeg-delivery-count": str(attempt),
        "aeg-data-version": "1.0",
        "aeg-metadata-version": "1",
    }
