"""The far end of a media stream, as ACS plays it: connects to the transport URL with ACS's
headers, sends AudioMetadata then one AudioData every 20 ms on an absolute schedule, and
records everything that comes back (audio frames and StopAudio, in order, with arrival times).

The caller is a `StreamScript` (canned audio, DTMF, hostile frames) or a `LiveCaller` (a
person at the console's softphone), whose frames are taken on the same schedule; with nothing
from the live caller for a tick, a silent frame goes, as ACS's stream is continuous.

Like ACS, a stream whose socket ends without a close frame (a reset, 1006) is re-established:
a new socket to the transport URL, AudioMetadata again, and `on_reestablished` is told (the
emulator sends MediaStreamingStarted with `streamConnectionReestablished`). `drop` aborts the
TCP connection to test it.

`MediaClient` streams each call as its answer (or create) asked, like ACS: DtmfData only with
`enableDtmfTones`, the service's audio and StopAudio ignored without `enableBidirectional`,
and with `audioChannelType` unmixed one AudioData per remote participant, each with its
`participantRawID` (mixed: one, with none).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from app.emulator import payloads
from app.emulator.caller_script import (
    FRAME_MS,
    StreamScript,
    bundled_speech,
    live_ticks,
    script_ticks,
    tone,
)
from app.emulator.live_caller import Heard, LiveCaller
from app.emulator.media_handler import TokenSource
from app.emulator.records import EmulatedCall

# The script and its sounds moved to caller_script; importing them from here still works.
__all__ = [
    "FRAME_MS",
    "MediaClient",
    "MediaStream",
    "Received",
    "StreamScript",
    "bundled_speech",
    "tone",
]
ABNORMAL_CLOSE = 1006
REESTABLISH_ATTEMPTS = 3
REESTABLISH_DELAY_S = 0.1


@dataclass(frozen=True, slots=True)
class Received:
    """One message from the service: `kind` is "audio" or "stop"."""

    kind: str
    at: float
    pcm: bytes = b""
    connection: int = 0  # which socket of the stream it came on (0: the first)


@dataclass
class MediaStream:
    """One media WebSocket to the service."""

    url: str
    call_connection_id: str
    correlation_id: str
    sample_rate: int = 16000
    script: StreamScript = field(default_factory=StreamScript)
    token_source: TokenSource | None = None
    received: list[Received] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # monotonic send time of each frame tick
    frames_sent: int = 0
    close_code: int | None = None
    close_reason: str | None = None
    live: LiveCaller | None = None  # instead of the script: a person speaking
    reestablish: bool = False  # reconnect after an abnormal close, as ACS does
    on_reestablished: Callable[[], None] | None = None
    dtmf_enabled: bool = True  # send the script's DtmfData (ACS: only with enableDtmfTones)
    bidirectional: bool = True  # take the service's audio (ACS: only with enableBidirectional)
    ignored: int = 0  # AudioData and StopAudio from the service dropped: not bidirectional
    connections: int = 0  # sockets opened so far
    close_codes: list[int] = field(default_factory=list)  # how each socket ended
    _closing: bool = False
    _socket: ClientConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * 2 * FRAME_MS // 1000

    @property
    def audio_received(self) -> list[Received]:
        return [r for r in self.received if r.kind == "audio"]

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def extensions(self) -> str | None:
        """The `Sec-WebSocket-Extensions` the service accepted (the client offers deflate)."""
        if self._socket is None or self._socket.response is None:
            return None
        return self._socket.response.headers.get("Sec-WebSocket-Extensions")

    async def open(self) -> None:
        """Connect and start streaming; raises if the service refuses the socket."""
        headers = {
            "x-ms-call-connection-id": self.call_connection_id,
            "x-ms-call-correlation-id": self.correlation_id,
        }
        if self.token_source is not None:
            headers["Authorization"] = f"Bearer {self.token_source.mint()}"
        self._socket = await connect(
            self.url, additional_headers=headers, max_size=None, open_timeout=10
        )
        connection = self.connections
        self.connections += 1
        self.close_code = self.close_reason = None
        self._tasks = [
            asyncio.create_task(self._send_loop(self._socket)),
            asyncio.create_task(self._receive_loop(self._socket, connection)),
        ]

    def drop(self) -> None:
        """Abort the TCP connection without a close frame (a network reset)."""
        if self._socket is not None:
            self._socket.transport.abort()

    async def close(self) -> None:
        """Close the socket (ACS ending the stream) and stop both loops."""
        self._closing = True
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def send_raw(self, message: str | bytes) -> None:
        """Send one raw message now (tests of hostile input)."""
        assert self._socket is not None
        await self._socket.send(message)

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate(self)` is true."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    async def wait_closed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda s: s.closed, timeout)

    async def _send_loop(self, socket: ClientConnection) -> None:
        size = self.frame_bytes
        if self.live is not None:
            ticks = live_ticks(self.live, self.sample_rate, size)
        else:
            ticks = script_ticks(self.script, self.sample_rate, size)
        await socket.send(
            json.dumps(
                {
                    "kind": "AudioMetadata",
                    "audioMetadata": {
                        "subscriptionId": self.call_connection_id,
                        "encoding": "PCM",
                        "sampleRate": self.sample_rate,
                        "channels": 1,
                        "length": size,
                    },
                }
            )
        )
        keep_times = self.live is None  # a live call may last hours: nothing accumulates
        participants = self.script.participants
        start = time.monotonic()
        for index, tick in enumerate(ticks, start=1):
            for raw in tick.raw:
                await socket.send(raw)
            for digit in tick.dtmf if self.dtmf_enabled else ():
                await socket.send(json.dumps({"kind": "DtmfData", "dtmfData": {"data": digit}}))
            data = base64.b64encode(tick.pcm).decode()
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if keep_times:
                self.sent_at.append(time.monotonic())
            for participant in participants:
                body: dict[str, Any] = {"timestamp": stamp, "data": data, "silent": tick.silent}
                if participant is not None:
                    body["participantRawID"] = participant
                await socket.send(json.dumps({"kind": "AudioData", "audioData": body}))
                self.frames_sent += 1
            delay = start + index * FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _receive_loop(self, socket: ClientConnection, connection: int) -> None:
        try:
            async for message in socket:
                self._record(message, connection)
        except Exception:  # noqa: S110 (a dropped socket is an outcome the tests read, not an error)
            pass
        finally:
            code = socket.close_code if socket.close_code is not None else ABNORMAL_CLOSE
            self.close_codes.append(code)
            if not (code == ABNORMAL_CLOSE and self.reestablish and not self._closing):
                self.close_code = code
                self.close_reason = socket.close_reason
                self._ended()
            self._changed.set()
        if self.close_code is None:
            await self._reestablish()

    async def _reestablish(self) -> None:
        """Reconnect after an abnormal close; the stream counts as closed if it cannot."""
        sender = self._tasks[0]
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        for _ in range(REESTABLISH_ATTEMPTS):
            await asyncio.sleep(REESTABLISH_DELAY_S)
            if self._closing:
                break
            try:
                await self.open()
            except (OSError, TimeoutError, InvalidHandshake):
                continue
            if self.on_reestablished is not None:
                self.on_reestablished()
            return
        self.close_code = ABNORMAL_CLOSE
        self._ended()
        self._changed.set()

    def _record(self, message: str | bytes, connection: int = 0) -> None:
        now = time.monotonic()
        try:
            decoded = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: a service sending `[[[[...`
            return
        if not isinstance(decoded, dict):
            return
        kind = decoded.get("Kind", decoded.get("kind"))
        if kind in ("StopAudio", "AudioData") and not self.bidirectional:
            self.ignored += 1  # ACS plays nothing into a call that did not enable it
        elif kind == "StopAudio":
            self._heard(Received("stop", now, connection=connection))
        elif kind == "AudioData":
            body = decoded.get("AudioData") or decoded.get("audioData") or {}
            data = body.get("Data", body.get("data", ""))
            self._heard(Received("audio", now, base64.b64decode(data), connection))
        self._changed.set()

    def _ended(self) -> None:
        # Closed for good (by either side): a live caller hears no more of this stream.
        if self.live is not None:
            self.live.stream_stopped()

    def _heard(self, received: Received) -> None:
        if self.live is None:
            self.received.append(received)
        elif received.kind == "stop":
            self.live.hear(Heard("stop"))
        else:
            self.live.hear(Heard("audio", received.pcm))


class MediaClient:
    """The emulator's MediaHandler: one MediaStream per call whose streaming starts."""

    def __init__(
        self, script: StreamScript | None = None, *, token_source: TokenSource | None = None
    ) -> None:
        self.script = script or StreamScript()
        self.token_source = token_source
        self.streams: dict[str, MediaStream] = {}
        self.history: list[MediaStream] = []
        self._live: dict[str, LiveCaller] = {}  # caller raw id -> who speaks on its calls
        # Told when a call's stream is re-established after an abnormal close (the emulator's
        # CallEngine sends MediaStreamingStarted with streamConnectionReestablished).
        self.on_reestablished: Callable[[EmulatedCall], None] | None = None

    @contextlib.contextmanager
    def live_caller(self, caller: str, live: LiveCaller) -> Iterator[None]:
        """Within the block, calls from `caller` stream `live` rather than the script."""
        self._live[caller] = live
        try:
            yield
        finally:
            if self._live.get(caller) is live:
                del self._live[caller]

    async def start(self, call: EmulatedCall) -> None:
        options = call.media_options or {}
        url = options.get("transportUrl")
        if not isinstance(url, str):
            raise ValueError("the call has no media transport URL")
        rate = 24000 if _option(options, "audioFormat") == "pcm24kmono" else 16000
        script = call.caller_script or self.script
        unmixed = _option(options, "audioChannelType") == "unmixed"
        if unmixed and list(script.participants) == [None]:
            # Unmixed: one AudioData per participant the service hears, each with its raw id.
            heard = tuple(p["rawId"] for p in _remote_parties(call)) or ("caller",)
            script = StreamScript(**{**script.__dict__, "participants": heard})
        live = self._live.get(call.caller) if call.caller is not None else None
        stream = MediaStream(
            url,
            call.call_connection_id,
            call.correlation_id,
            sample_rate=rate,
            script=script,
            token_source=self.token_source,
            live=live,
            reestablish=True,
            on_reestablished=lambda: self._reestablished(call),
            dtmf_enabled=options.get("enableDtmfTones") is True,
            # ACS's default when the answer leaves it out: no outbound audio.
            bidirectional=options.get("enableBidirectional") is True,
        )
        await stream.open()
        self.streams[call.call_connection_id] = stream
        if live is None:
            self.history.append(stream)  # a live stream keeps nothing: it may last hours

    def _reestablished(self, call: EmulatedCall) -> None:
        if self.on_reestablished is not None:
            self.on_reestablished(call)

    async def stop(self, call: EmulatedCall) -> None:
        stream = self.streams.pop(call.call_connection_id, None)
        if stream is not None:
            await stream.close()


def _option(options: dict[str, Any], name: str) -> str:
    """An enum of mediaStreamingOptions, lower case (ACS reads them case-insensitively)."""
    value = options.get(name)
    return value.lower() if isinstance(value, str) else ""


def _remote_parties(call: EmulatedCall) -> list[dict[str, Any]]:
    """Whom the service hears: the caller of an inbound call, the callees of an outbound one."""
    parties = [call.source] if call.direction == "inbound" else call.targets
    known = [payloads.with_raw_id(p) for p in parties if p is not None]
    return [p for p in known if isinstance(p.get("rawId"), str) and p["rawId"]]
