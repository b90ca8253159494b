"""The console's softphone socket: a browser talks to the agent through an emulated call (only
when the embedded emulator is this service's ACS).

The call is placed as the console's "Place test call" places one (Event Grid IncomingCall,
answered through the SDK, signed callbacks); its caller is the browser (`BrowserPhone`). The
messages the browser sends are in `app.emulator.phone_messages`; the service sends:

    {"type": "call", "call_connection_id": "..."}     the service answered the call
    {"type": "media", "state": "started", "sample_rate": 16000}   audio flows (or "stopped")
    <binary>                                          the call's audio, PCM16 at the browser's rate
    {"type": "stop"}                                  StopAudio: empty the playback buffer now
    {"type": "error", "message": "..."}               a message was skipped (the call goes on)
    {"type": "ended", "reason": "..."}                the call is over; the socket closes (1000)

Refusals close the socket with a code the page tells apart: 4401 no or wrong control API key,
4403 another site's page, 4404 the emulator is not this service's ACS, 4502 the call could not
be placed, 1008 a first message that is not `start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.api.deps import get_ws_services
from app.api.emulator import PARTY_PATTERN, place_call
from app.api.errors import ApiError
from app.observability.console_feed import RoundTripMeasured
from app.observability.logging import bind_call
from app.security.errors import SecurityError
from app.services import Services

# The emulator's modules are imported inside the functions, and for types only here: a service
# with a real ACS resource never loads them.
if TYPE_CHECKING:
    from app.emulator import AcsEmulator, EmulatedCall
    from app.emulator.browser_phone import BrowserPhone
    from app.emulator.media_client import MediaClient

log = logging.getLogger(__name__)

PATH = "/api/console/phone"
START_TIMEOUT_S = 10.0  # the browser says its rate at once; a silent socket is not kept
STATS_INTERVAL_S = 1.0  # how often the round trip goes to the console's event stream
CALLER_DISPLAY_NAME = "Console softphone"
UNAUTHORIZED, FOREIGN_ORIGIN, NO_EMULATOR, CALL_FAILED, BAD_START = 4401, 4403, 4404, 4502, 1008
MAX_ERRORS_TOLD = 10  # the browser hears of its first bad messages; the log counts them all

router = APIRouter()


@router.websocket(PATH)
async def softphone(
    websocket: WebSocket,
    key: Annotated[str | None, Query(description="The control API key", max_length=512)] = None,
    to: Annotated[
        str | None, Query(description="The line to call (its agent answers)", pattern=PARTY_PATTERN)
    ] = None,
) -> None:
    services = get_ws_services(websocket)
    try:
        emulator, media = _admit(websocket, services, key)
    except Refused as refused:
        # Accepted to refuse: a browser sees a close code and reason, never an HTTP status.
        await websocket.accept()
        await websocket.close(refused.code, refused.reason)
        return
    await websocket.accept()
    try:
        rate = await _read_start(websocket)
    except TimeoutError:
        await websocket.close(BAD_START, f"no start message within {START_TIMEOUT_S:g} s")
        return
    except ValueError as exc:
        await websocket.close(BAD_START, str(exc)[:120])
        return
    except WebSocketDisconnect:
        return
    from app.emulator.browser_phone import BrowserPhone

    await BrowserCall(websocket, services, emulator, BrowserPhone(rate), to=to).run(media)


class Refused(Exception):
    """This socket may not place a call: its close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BrowserCall:
    """One softphone call: places it, relays both ways, and ends it however it ends."""

    def __init__(
        self,
        websocket: WebSocket,
        services: Services,
        emulator: AcsEmulator,
        phone: BrowserPhone,
        *,
        to: str | None = None,
    ) -> None:
        self._ws = websocket
        self._services = services
        self._emulator = emulator
        self._phone = phone
        self._to = to
        self._bad_messages = 0
        self._published_ms: float | None = None

    async def run(self, media: MediaClient) -> None:
        caller = f"8:acs:{self._emulator.resource_id}_{uuid.uuid4()}"  # a browser: an ACS user
        with media.live_caller(caller, self._phone):
            try:
                placed = await place_call(
                    self._ws,
                    self._services,
                    caller=caller,
                    caller_display_name=CALLER_DISPLAY_NAME,
                    to=self._to,
                )
            except ApiError as exc:
                await self._ws.close(CALL_FAILED, exc.message[:120])
                return
            call = placed.call
            if call is None:
                await self._ws.close(CALL_FAILED, "the service did not answer the call")
                return
            with bind_call(call.call_connection_id, call.correlation_id):
                reason = "the softphone socket failed"
                try:
                    reason = await self._relay(call)
                finally:
                    # However the relay ended (cancelled at shutdown included), the call ends.
                    await self._end(call, reason)

    async def _relay(self, call: EmulatedCall) -> str:
        """Both directions until the browser hangs up or leaves, or the call ends; why it ended."""
        self._phone.post({"type": "call", "call_connection_id": call.call_connection_id})
        from_browser = asyncio.create_task(self._from_browser())
        to_browser = asyncio.create_task(self._to_browser(call))
        tasks = {from_browser, to_browser}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _from_browser(self) -> str:
        from app.emulator.phone_messages import (
            Audio,
            BadMessage,
            Dtmf,
            HangUp,
            parse_phone_message,
        )

        phone = self._phone
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return "the browser left"
            try:
                parsed = parse_phone_message(message.get("text"), message.get("bytes"))
            except BadMessage as exc:
                self._bad_message(str(exc))
                continue
            if type(parsed) is Audio:
                phone.speak(parsed.pcm)
            elif type(parsed) is Dtmf:
                phone.press(parsed.tones)
            elif type(parsed) is HangUp:
                return "hung up from the browser"
            else:
                self._bad_message("the call has already started")

    async def _to_browser(self, call: EmulatedCall) -> str:
        phone, ws = self._phone, self._ws
        while not call.is_disconnected:
            for item in await phone.outgoing(max_wait_s=STATS_INTERVAL_S):
                try:
                    if item.pcm is not None:
                        await ws.send_bytes(item.pcm)
                    else:
                        await ws.send_text(json.dumps(item.control))
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return "the browser left"
            self._publish_round_trip(call.call_connection_id)
        return "the call ended"

    async def _end(self, call: EmulatedCall, reason: str) -> None:
        """Hang up from the caller's side unless the call already ended, then tell the page."""
        self._phone.close()
        if not call.is_disconnected:
            # The far end hangs up: media stops, then CallDisconnected reaches the service.
            with contextlib.suppress(KeyError, RuntimeError):  # unknown, or shutting down
                await self._emulator.remote_hang_up(call.call_connection_id)
        log.info("softphone call ended: %s", reason)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._ws.send_text(json.dumps({"type": "ended", "reason": reason}))
            await self._ws.close(1000, reason[:120])

    def _bad_message(self, why: str) -> None:
        self._bad_messages += 1
        count = self._bad_messages
        if count <= MAX_ERRORS_TOLD:
            self._phone.post({"type": "error", "message": why})
        if count <= MAX_ERRORS_TOLD or count % 100 == 0:
            log.warning("softphone: skipped a bad message (%d so far): %s", count, why)

    def _publish_round_trip(self, call_connection_id: str) -> None:
        ms = self._phone.round_trip.ms
        if ms is not None and ms != self._published_ms:
            self._published_ms = ms
            self._services.events.publish(RoundTripMeasured(call_connection_id, ms))


def _admit(
    websocket: WebSocket, services: Services, key: str | None
) -> tuple[AcsEmulator, MediaClient]:
    """The emulator that will place the call and its media client; Refused says why not."""
    check = services.security.control_key
    if check is not None:
        try:
            check.check_with_query(websocket.headers, key)  # constant-time comparison
        except SecurityError as exc:
            raise Refused(UNAUTHORIZED, exc.reason) from exc
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        # Browsers send Origin: another site's page must not place calls on this service.
        raise Refused(FOREIGN_ORIGIN, "the softphone accepts the console's own page only")
    emulator = services.emulator
    if emulator is None:
        raise Refused(NO_EMULATOR, "the softphone needs the embedded ACS emulator as the ACS")
    from app.emulator.media_client import MediaClient

    media = emulator.media_handler
    if not isinstance(media, MediaClient):
        raise Refused(NO_EMULATOR, "the emulator plays no media for the softphone")
    return emulator, media


async def _read_start(websocket: WebSocket) -> int:
    """The browser's sample rate, from its first message; ValueError if that is not `start`."""
    from app.emulator.phone_messages import BadMessage, Start, parse_phone_message

    async with asyncio.timeout(START_TIMEOUT_S):
        message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    try:
        parsed = parse_phone_message(message.get("text"), message.get("bytes"))
    except BadMessage as exc:
        raise ValueError(f"the first message must be start: {exc}") from None
    if type(parsed) is not Start:
        raise ValueError("the first message must be start")
    return parsed.sample_rate
