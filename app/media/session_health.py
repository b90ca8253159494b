"""A media session's view of its backend: failures, health on the call's record, and no dead
air (BACKEND_FAILOVER) when the call is left without a working backend."""

from __future__ import annotations

import contextlib
import logging

from app.audio_prompt import Prompt
from app.backends.base import (
    BackendError,
    BackendEvent,
)
from app.media import session_record
from app.media.backend_health import HealthChange
from app.media.failover import play_prompt
from app.media.inbound import (
    SessionEnd,
    StreamEnded,
)
from app.media.session_base import (
    BACKEND_FAILED,
    SHUTDOWN_ACTION_TIMEOUT_S,
    SessionBase,
    SessionEnded,
)

_GOOD_NEWS = ("BackendConnected", "BackendRecovered")

log = logging.getLogger(__name__)


class SessionHealth(SessionBase):
    """The backend side of a media session: what it reports, how it fails, the failover."""

    def _backend_failed(self, exc: Exception) -> None:
        """Count a backend failure; raises SessionEnded when it ends the media session.

        Whatever a backend raises (a plug-in's bug included) lands here, never in the ASGI
        server; cancellation is not an Exception and passes through.
        """
        self.stats.backend_errors += 1
        if isinstance(exc, BackendError):
            log.warning("backend error: %s", exc, extra=self._log_extra())
            if exc.fatal:
                self._health_failed(str(exc))
                raise SessionEnded(SessionEnd(f"backend failed: {exc}", BACKEND_FAILED)) from exc
            return
        self._health_failed(f"{type(exc).__name__}: {exc}")
        # A backend bug or a broken resource (disk, network): end the media session cleanly
        # (1011) rather than let the error escape; the ACS call itself stays up.
        log.exception("backend raised %s", type(exc).__name__, extra=self._log_extra())
        raise SessionEnded(
            SessionEnd(f"backend failed: {type(exc).__name__}", BACKEND_FAILED)
        ) from exc

    def _on_backend_event(self, event: BackendEvent) -> None:
        self.stats.record_backend_event(event)
        if self._call is not None:
            self._health_changed(self._call.health.observe(event))
        if event.kind == "error":
            self.stats.backend_errors += 1
            log.warning("backend reported: %s", dict(event.data), extra=self._log_extra())
        elif event.kind == "reconnect":
            self._metrics.backend_reconnected()
        elif event.kind == "transcript":
            log.info(
                "transcript %s: %s",
                event.data.get("role"),
                event.data.get("text"),
                extra=self._log_extra(),
            )
        elif event.kind == "tool_call":
            data = event.data
            outcome = str(data.get("outcome", "error"))
            self._metrics.tool_called(str(data.get("tool", "unknown")), outcome)
            log.info(
                "tool call %s: %s in %s ms",
                data.get("name"),
                outcome,
                data.get("duration_ms"),
                extra=self._log_extra(),
            )

    def _health_changed(self, change: HealthChange | None) -> None:
        """Write a change of the backend's health to the call's record now (a few per outage);
        None: the tracker saw no change."""
        if change is None:
            return
        if change.outage_began:
            self._metrics.backend_outage()
        if change.event is not None:
            level = logging.INFO if change.event in _GOOD_NEWS else logging.WARNING
            detail = f": {change.detail}" if change.detail else ""
            log.log(level, "%s%s", change.event, detail, extra=self._log_extra())
        self._writer.submit(
            self.call.call_connection_id,
            session_record.backend_health(
                self.call, change.health, change.event, change.detail, self._known.record
            ),
            on_stored=self._known.keep,
        )

    def _health_failed(self, reason: str) -> None:
        if self._call is not None:
            self._health_changed(self._call.health.failed(reason))

    def _health_closed(self) -> None:
        if self._call is not None:
            self._health_changed(self._call.health.closed())

    def _check_unavailable(self, now: float) -> None:
        """A backend unavailable for BACKEND_FAILOVER_AFTER_S leaves the call to the failover."""
        health = self._call.health if self._call is not None else None
        limit = self._failover.policy.after_s
        if health is None or self._failover.done or health.unavailable_for(now) < limit:
            return
        reason = f"no working backend for {limit:g} s: {health.health.detail or health.state.value}"
        if self._failover.policy.action == "keep":
            self._failover.keep(reason)  # the backend may still come back: the session goes on
            return
        self._health_failed(reason)  # the record says why, not only that the backend closed
        self.end(reason, BACKEND_FAILED)

    async def _no_dead_air(self, end: SessionEnd) -> SessionEnd:
        """The session ends with the call still up and no backend for it: fail over."""
        if self._failover.done:
            return end
        if self._shutting_down:
            await self._failover.at_shutdown(SHUTDOWN_ACTION_TIMEOUT_S)
            return end
        if end.close_code != BACKEND_FAILED or self._claimed:
            return end
        media = self._media
        play = None
        if media is not None and self._settings.media_bidirectional:
            pacer, rate = media.pacer, media.stream.sample_rate

            async def play(prompt: Prompt) -> None:
                await play_prompt(prompt, pacer, rate, self._socket.send, self._peer_gone())

        await self._failover.run(end.reason, play)
        return end

    async def _peer_gone(self) -> None:
        """Read (and discard) what ACS still sends until its socket goes."""
        with contextlib.suppress(StreamEnded):
            while True:
                self._inbound.receive(await self._receive())
