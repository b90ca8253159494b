"""`AcsEmulator`: an Azure Communication Services Call Automation stand-in on a real socket, for
tests, the demo and local development (`run_emulator`)."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import socket
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

import aiohttp
from aiohttp import web

from app.emulator import payloads
from app.emulator.callbacks import CallbackSender
from app.emulator.calls import CallEngine
from app.emulator.eventgrid import EventGridDelivery
from app.emulator.faults import (
    DEFAULT_DTMF_FAILURE_CODE,
    DEFAULT_DTMF_FAILURE_MESSAGE,
    DEFAULT_DTMF_FAILURE_SUB_CODE,
    DEFAULT_MEDIA_FAILURE,
    DEFAULT_TRANSFER_FAILURE_CODE,
    DEFAULT_TRANSFER_FAILURE_MESSAGE,
    DEFAULT_TRANSFER_FAILURE_SUB_CODE,
    ActionFailure,
    Fault,
    FaultPlan,
)
from app.emulator.media_handler import MediaHandler, TokenSource
from app.emulator.records import (
    EmulatedCall,
    IncomingCallDelivery,
    RecordedRequest,
    SentCallback,
    WebhookValidation,
)
from app.emulator.rest import RestContext, build_app

if TYPE_CHECKING:
    from app.emulator.caller_script import StreamScript

log = logging.getLogger(__name__)

DEFAULT_CALLEE = "+18005550100"  # the emulated resource's phone number
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/acs-emulator"
    "/providers/microsoft.communication/communicationservices/acs-emulator"
)
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
_SHUTDOWN_TIMEOUT_S = 2.0


class AcsEmulator:
    """The Call Automation REST API, its callbacks and Event Grid's IncomingCall delivery."""

    def __init__(
        self,
        *,
        access_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        media_handler: MediaHandler | None = None,
        connect_delay_s: float = 0.05,
        token_source: TokenSource | None = None,
        advertised_host: str | None = None,
        transfer_delay_s: float = 0.0,
    ) -> None:
        self.access_key = access_key or base64.b64encode(secrets.token_bytes(32)).decode()
        base64.b64decode(self.access_key, validate=True)  # fail early on a key the SDK can't use
        self.host = host
        self.port = port
        self.resource_id = str(uuid.uuid4())  # the immutable resource id: callback token audience
        self.media_handler = media_handler
        self.token_source = token_source
        self.connect_delay_s = connect_delay_s
        self.transfer_delay_s = transfer_delay_s  # from a transfer's 202 to its outcome
        self.calls: dict[str, EmulatedCall] = {}
        self.requests: list[RecordedRequest] = []
        self.callbacks: list[SentCallback] = []
        self.faults = FaultPlan()
        self._advertised_host = advertised_host
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._engine: CallEngine | None = None
        self._sender: CallbackSender | None = None
        self._eventgrid: EventGridDelivery | None = None

    @property
    def endpoint(self) -> str:
        """`http://host:port`, no trailing slash (it would change the signed host)."""
        return f"http://{self.signed_host}"

    @property
    def signed_host(self) -> str:
        """The `host` value clients sign: the endpoint without its scheme."""
        if self._advertised_host is not None:
            return self._advertised_host
        if self._runner is None and self.port == 0:
            raise RuntimeError("the emulator's port is known once it has started")
        return f"{self.host}:{self.port}"

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"

    async def start(self) -> None:
        """Bind, serve, and start the callback sender."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._session = aiohttp.ClientSession()
        self._sender = CallbackSender(self._session, self.callbacks, token_source=self.token_source)
        self._engine = CallEngine(
            calls=self.calls,
            callbacks=self._sender,
            faults=self.faults,
            app_identity=f"8:acs:{self.resource_id}_{uuid.uuid4()}",
            media_handler=self.media_handler,
            connect_delay_s=self.connect_delay_s,
            transfer_delay_s=self.transfer_delay_s,
        )
        self._eventgrid = EventGridDelivery(self._session, topic=TOPIC)
        context = RestContext(
            engine=self._engine,
            faults=self.faults,
            access_key=self.access_key,
            requests=self.requests,
            signed_hosts=self._signed_hosts,
            token_source=self.token_source,
        )
        self._runner = web.AppRunner(
            build_app(context), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        log.info("ACS emulator listening on %s", self.endpoint)

    async def stop(self) -> None:
        """Stop serving, cancel pending side effects and callbacks, close media streams."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._engine is not None:
            await self._engine.aclose()
        if self._sender is not None:
            await self._sender.aclose()
        if self._session is not None:
            await self._session.close()
        self._engine = self._sender = self._eventgrid = self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def add_fault(
        self,
        operation: str,
        *,
        status: int = 500,
        times: int = 1,
        delay_s: float = 0.0,
        retry_after: float | None = None,
        error_code: str | None = None,
    ) -> None:
        """Answer the next `times` requests of `operation` with `status` (below 400: delay only)."""
        fault = Fault(status, times, delay_s, retry_after, error_code)
        self.faults.add(operation, fault)

    def fail_next_media_start(self, details: str = DEFAULT_MEDIA_FAILURE) -> None:
        """The next media start (on answer or REST) posts MediaStreamingFailed with `details`."""
        self.faults.fail_next_media_start(details)

    def fail_next_transfer(
        self,
        *,
        code: int = DEFAULT_TRANSFER_FAILURE_CODE,
        sub_code: int = DEFAULT_TRANSFER_FAILURE_SUB_CODE,
        message: str = DEFAULT_TRANSFER_FAILURE_MESSAGE,
    ) -> None:
        """The next transfer is answered 202, then posts CallTransferFailed with this
        resultInformation; the call stays connected."""
        self.faults.fail_next_transfer(ActionFailure(code, sub_code, message))

    def fail_next_send_dtmf(
        self,
        *,
        code: int = DEFAULT_DTMF_FAILURE_CODE,
        sub_code: int = DEFAULT_DTMF_FAILURE_SUB_CODE,
        message: str = DEFAULT_DTMF_FAILURE_MESSAGE,
    ) -> None:
        """The next sendDtmfTones is answered 202, then posts SendDtmfTonesFailed."""
        self.faults.fail_next_send_dtmf(ActionFailure(code, sub_code, message))

    async def place_incoming_call(
        self,
        webhook_url: str,
        *,
        caller: str = "+14255550123",
        callee: str | None = None,
        caller_display_name: str = "Test Caller",
        schema: Literal["eventgrid", "cloudevents"] = "eventgrid",
        deliveries: int = 1,
        headers: Mapping[str, str] | None = None,
        script: StreamScript | None = None,
        hang_up_after_s: float | None = None,
    ) -> IncomingCallDelivery:
        """Offer a new call and deliver its IncomingCall event `deliveries` times.

        Once answered, the caller says `script` (else the media client's own) and hangs up
        after `hang_up_after_s` seconds (else never by itself).
        """
        engine, eventgrid = self._running()
        offer = engine.offer(
            caller,
            callee or DEFAULT_CALLEE,
            caller_display_name,
            script=script,
            hang_up_after_s=hang_up_after_s,
        )
        event = payloads.incoming_call_event(
            offer, topic=TOPIC, cloudevents=schema == "cloudevents"
        )
        results = await eventgrid.deliver(
            webhook_url, event, schema=schema, deliveries=deliveries, headers=headers
        )
        return IncomingCallDelivery(
            event_id=event["id"],
            incoming_call_context=offer.incoming_call_context,
            correlation_id=offer.correlation_id,
            server_call_id=offer.server_call_id,
            event=event,
            deliveries=results,
        )

    async def validate_webhook(
        self, webhook_url: str, *, schema: Literal["eventgrid", "cloudevents"] = "eventgrid"
    ) -> WebhookValidation:
        """Event Grid's subscription handshake against `webhook_url`."""
        _, eventgrid = self._running()
        return await eventgrid.validate(webhook_url, schema=schema)

    # `timeout` (ASYNC109) is part of the interface every test uses.
    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Poll `predicate` until true; `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            # The predicate may read any state (calls, callbacks, requests): polling is the point.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def settle(self) -> None:
        """Wait until every queued side effect has run and every callback has been sent."""
        engine, _ = self._running()
        sender = self._sender
        await engine.join()
        if sender is not None:
            await sender.join()

    async def remote_hang_up(self, call_connection_id: str) -> None:
        """The far end hangs up: media stops, then CallDisconnected. KeyError if unknown."""
        engine, _ = self._running()
        engine.remote_hang_up(call_connection_id)

    async def call_for_context(self, incoming_call_context: str) -> EmulatedCall | None:
        """The call answered with this incoming call context, if any."""
        engine, _ = self._running()
        offer = engine.offers.get(incoming_call_context)
        if offer is None or offer.answered_call_id is None:
            return None
        return self.calls.get(offer.answered_call_id)

    def rejection(self, incoming_call_context: str) -> str | None:
        """The reason the service gave when it rejected this offered call (None: it did not)."""
        engine, _ = self._running()
        offer = engine.offers.get(incoming_call_context)
        return offer.rejected_reason if offer is not None else None

    def events_for(self, call_connection_id: str) -> list[dict[str, object]]:
        """Every callback event sent for a call so far, in order."""
        return [
            event
            for sent in self.callbacks
            for event in sent.events
            if event.get("data", {}).get("callConnectionId") == call_connection_id
        ]

    def event_types_for(self, call_connection_id: str) -> list[str]:
        """The short type names (`CallConnected`, ...) of a call's callbacks, in order."""
        prefix = payloads.EVENT_PREFIX
        return [str(e["type"]).removeprefix(prefix) for e in self.events_for(call_connection_id)]

    def _running(self) -> tuple[CallEngine, EventGridDelivery]:
        if self._engine is None or self._eventgrid is None:
            raise RuntimeError("the emulator is not running")
        return self._engine, self._eventgrid

    def _signed_hosts(self, request: web.Request) -> list[str]:
        hosts = [self.signed_host]
        if self._advertised_host is None and self.host in _WILDCARD_HOSTS:
            hosts.append(request.host)  # bound to every interface: trust the name used
        return hosts


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
