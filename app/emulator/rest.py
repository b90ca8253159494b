"""The Call Automation REST surface (aiohttp): paths, status codes and bodies as the real service
answers the `azure-communication-callautomation` SDK.

Every request passes, in order: recording, HMAC verification (401), routing (404/405),
`api-version` (400), injected faults, `Repeatability-Request-ID` replay, JSON body (400), then
the operation on the `CallEngine` (its `EmulatorError`s become error answers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from app.emulator import payloads
from app.emulator.calls import CallEngine
from app.emulator.errors import EmulatorError, bad_request, error_body
from app.emulator.faults import OPERATIONS, FaultPlan
from app.emulator.hmac_auth import SignatureError, verify_request
from app.emulator.media_handler import TokenSource
from app.emulator.records import RecordedRequest

API_VERSION = "2026-03-12"
SUPPORTED_API_VERSIONS = frozenset({API_VERSION})
BODY_REQUIRED = frozenset(
    {
        "answer",
        "reject",
        "create",
        "startMediaStreaming",
        "stopMediaStreaming",
        "transferToParticipant",
        "sendDtmfTones",
    }
)
# The operations whose SDK request carries Repeatability-Request-ID (the REST spec's too).
REPEATABLE = frozenset(
    {"answer", "reject", "create", "terminate", "transferToParticipant", "sendDtmfTones"}
)
KEYS_ROUTE = "keys"
_JSON_BODY: web.RequestKey[dict[str, Any]] = web.RequestKey("json_body", dict)
_CALL = "/calling/callConnections/{call_id:[^/:]+}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RestContext:
    """What the routes work on; the emulator owns every part."""

    engine: CallEngine
    faults: FaultPlan
    access_key: str
    requests: list[RecordedRequest]
    signed_hosts: Callable[[web.Request], list[str]]
    token_source: TokenSource | None = None


def build_app(ctx: RestContext) -> web.Application:
    """The aiohttp application serving the Call Automation API on `ctx`."""
    api = _Routes(ctx)
    app = web.Application(middlewares=[api.middleware])
    router = app.router
    router.add_post("/calling/callConnections:answer", api.answer, name="answer")
    router.add_post("/calling/callConnections:reject", api.reject, name="reject")
    router.add_post("/calling/callConnections", api.create, name="create")
    router.add_post(_CALL + ":startMediaStreaming", api.start_media, name="startMediaStreaming")
    router.add_post(_CALL + ":stopMediaStreaming", api.stop_media, name="stopMediaStreaming")
    router.add_post(_CALL + ":terminate", api.hang_up, name="terminate")
    router.add_post(_CALL + ":transferToParticipant", api.transfer, name="transferToParticipant")
    router.add_post(_CALL + ":sendDtmfTones", api.send_dtmf, name="sendDtmfTones")
    router.add_get(_CALL, api.get, name="get")
    router.add_delete(_CALL, api.hang_up, name="hangup")
    router.add_get("/calling/keys", api.keys, name=KEYS_ROUTE)
    return app


class _Routes:
    def __init__(self, ctx: RestContext) -> None:
        self._ctx = ctx
        self._engine = ctx.engine
        self._replies: dict[tuple[str, str], tuple[int, Any]] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPException as exc:  # e.g. 413, body over aiohttp's size limit
            return _error(exc.status, exc.reason.replace(" ", ""), exc.reason)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=_json_or_none(body),
            raw_path=request.raw_path,
            raw_body=body,
        )
        self._ctx.requests.append(record)
        response = await self._dispatch(request, handler, body)
        record.status = response.status
        return response

    async def _dispatch(
        self, request: web.Request, handler: Handler, body: bytes
    ) -> web.StreamResponse:
        operation = request.match_info.route.name
        if operation != KEYS_ROUTE:
            try:
                verify_request(
                    self._ctx.access_key,
                    request.method,
                    request.raw_path,
                    self._ctx.signed_hosts(request),
                    request.headers,
                    body,
                )
            except SignatureError as exc:
                return _error(401, "Unauthorized", f"Denied by HMAC authentication: {exc}.")
        routing_error = request.match_info.http_exception
        if routing_error is not None:
            return _error(routing_error.status, routing_error.reason.replace(" ", ""), "No route.")
        if operation == KEYS_ROUTE:
            return await handler(request)
        version = request.query.get("api-version")
        if version not in SUPPORTED_API_VERSIONS:
            message = f"api-version {version!r} is not supported; use {API_VERSION}."
            return _error(400, "UnsupportedApiVersion", message)
        return await self._operate(request, handler, operation, body)

    async def _operate(
        self, request: web.Request, handler: Handler, operation: str | None, body: bytes
    ) -> web.StreamResponse:
        fault = self._ctx.faults.take(operation) if operation in OPERATIONS else None
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            if fault.is_error:
                return web.json_response(
                    fault.error_body(), status=fault.status, headers=fault.headers()
                )
        request_id = request.headers.get("Repeatability-Request-ID")
        key = (str(operation), request_id) if operation in REPEATABLE and request_id else None
        if key is not None and key in self._replies:
            status, reply = self._replies[key]
            return _reply(status, reply)
        if operation in BODY_REQUIRED:
            parsed = _json_or_none(body)
            if not isinstance(parsed, dict):
                return _error(400, "BadRequest", "The request body must be a JSON object.")
            request[_JSON_BODY] = parsed
        try:
            response = await handler(request)
        except EmulatorError as exc:
            response = _error(exc.status, exc.code, exc.message)
        if key is not None and isinstance(response, web.Response) and response.status < 500:
            self._replies[key] = (response.status, _json_or_none(response.body or b""))
        return response

    async def answer(self, request: web.Request) -> web.StreamResponse:
        call = self._engine.answer(_json_body(request))
        return web.json_response(payloads.call_properties(call), status=200)

    async def reject(self, request: web.Request) -> web.StreamResponse:
        # The real service answers 204; the offer can no longer be answered.
        body = _json_body(request)
        offer = self._engine.offers.get(str(body.get("incomingCallContext", "")))
        if offer is None:
            raise bad_request("Invalid incomingCallContext: unknown or expired.")
        if offer.answered_call_id is not None or offer.rejected_reason is not None:
            raise EmulatorError(409, "Conflict", "The call has already been answered or rejected.")
        offer.rejected_reason = str(body.get("callRejectReason") or "none")
        return web.Response(status=204)

    async def create(self, request: web.Request) -> web.StreamResponse:
        call = self._engine.create(_json_body(request))
        return web.json_response(payloads.call_properties(call), status=201)

    async def get(self, request: web.Request) -> web.StreamResponse:
        call = self._engine.get(request.match_info["call_id"])
        return web.json_response(payloads.call_properties(call), status=200)

    async def start_media(self, request: web.Request) -> web.StreamResponse:
        self._engine.start_media(request.match_info["call_id"], _json_body(request))
        return web.Response(status=202)

    async def stop_media(self, request: web.Request) -> web.StreamResponse:
        self._engine.stop_media(request.match_info["call_id"], _json_body(request))
        return web.Response(status=202)

    async def transfer(self, request: web.Request) -> web.StreamResponse:
        """202 + TransferCallResponse; CallTransferAccepted or CallTransferFailed follows."""
        context = self._engine.transfer(request.match_info["call_id"], _json_body(request))
        return web.json_response(payloads.operation_response(context), status=202)

    async def send_dtmf(self, request: web.Request) -> web.StreamResponse:
        """202 + SendDtmfTonesResult; SendDtmfTonesCompleted or SendDtmfTonesFailed follows."""
        context = self._engine.send_dtmf(request.match_info["call_id"], _json_body(request))
        return web.json_response(payloads.operation_response(context), status=202)

    async def hang_up(self, request: web.Request) -> web.StreamResponse:
        self._engine.hang_up(request.match_info["call_id"])
        return web.Response(status=204)

    async def keys(self, request: web.Request) -> web.StreamResponse:
        if self._ctx.token_source is None:
            return _error(404, "NotFound", "This emulator does not sign callbacks.")
        return web.json_response(self._ctx.token_source.jwks())


def _json_body(request: web.Request) -> dict[str, Any]:
    body: dict[str, Any] = request[_JSON_BODY]
    return body


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def _reply(status: int, body: Any) -> web.Response:
    if body is None:
        return web.Response(status=status)
    return web.json_response(body, status=status)


def _json_or_none(raw: bytes | Any) -> Any:
    if not isinstance(raw, bytes | bytearray) or not raw:
        return None
    try:
        return json.loads(raw)
    # ValueError covers UnicodeDecodeError; deeply nested JSON (`[[[[...`) raises RecursionError.
    except (ValueError, RecursionError):
        return None
