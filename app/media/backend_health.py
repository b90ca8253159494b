"""The health of a call's backend, from what the backend reports (sans I/O).

A backend reports `connected` each time its upstream (a model, a downstream service) is ready
to serve audio, `reconnect` (with `reason` and `attempt`) each time it is unavailable, and a
fatal `error` when it gives up. The tracker turns those into the call's `backend` state:

    CONNECTING --connected--> READY --reconnect--> RECONNECTING --connected--> READY
        |                                               |
        +--reconnect--> RECONNECTING        any --fatal error--> FAILED;  close --> CLOSED

Each change is one `HealthChange`: the session writes it to the call's record at once (changes
are a few per outage, never per frame) and counts an outage when one begins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.backends.base import BackendEvent
from app.calls.models import BackendHealth, BackendState, utcnow

_UNAVAILABLE = (BackendState.CONNECTING, BackendState.RECONNECTING)


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A change of the backend's health; `event` names it in the call's `recent_events`."""

    health: BackendHealth
    event: str | None  # BackendConnected, BackendUnavailable, BackendRecovered, BackendFailed
    detail: str | None = None
    outage_began: bool = False


class HealthTracker:
    """One call's backend health, across the call's media sockets."""

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._health = BackendHealth(name=name)
        self._was_ready = False
        self._unavailable_since: float | None = clock()

    @property
    def health(self) -> BackendHealth:
        return self._health

    @property
    def state(self) -> BackendState:
        return self._health.state

    def unavailable_for(self, now: float) -> float:
        """Seconds the backend has been continuously unable to serve the call (0 when ready)."""
        since = self._unavailable_since
        return 0.0 if since is None else max(0.0, now - since)

    def observe(self, event: BackendEvent) -> HealthChange | None:
        """The change `event` makes, if any."""
        kind, data = event.kind, event.data
        if kind == "connected":
            return self._ready()
        if kind == "reconnect":
            reason = data.get("reason") or data.get("error") or "unavailable"
            return self._unavailable(str(reason))
        if kind == "error" and data.get("fatal") is True:
            return self.failed(str(data.get("message") or "backend failed"))
        return None

    def failed(self, reason: str) -> HealthChange | None:
        """The backend gave up (or could not be created): the call has no working backend."""
        if self.state in (BackendState.FAILED, BackendState.CLOSED):
            return None
        began = self.state is BackendState.READY
        if self._unavailable_since is None:
            self._unavailable_since = self._clock()
        return self._move(BackendState.FAILED, reason, "BackendFailed", began)

    def closed(self) -> HealthChange | None:
        """The call's media is over and the backend closed."""
        if self.state in (BackendState.FAILED, BackendState.CLOSED):
            return None
        return self._move(BackendState.CLOSED, None, None, False)

    def _ready(self) -> HealthChange | None:
        if self.state not in _UNAVAILABLE:
            return None
        event = "BackendRecovered" if self._was_ready else "BackendConnected"
        self._was_ready = True
        self._unavailable_since = None
        return self._move(BackendState.READY, None, event, False)

    def _unavailable(self, reason: str) -> HealthChange | None:
        state = self.state
        if state in (BackendState.FAILED, BackendState.CLOSED):
            return None
        attempts = self._health.attempts + 1
        if state is BackendState.RECONNECTING:
            # Another failed attempt of the same outage: the record's detail and count move on.
            self._health = self._health.model_copy(update={"detail": reason, "attempts": attempts})
            return HealthChange(self._health, None)
        if self._unavailable_since is None:
            self._unavailable_since = self._clock()
        began = state in (BackendState.READY, BackendState.CONNECTING)
        change = self._move(BackendState.RECONNECTING, reason, "BackendUnavailable", began)
        self._health = self._health.model_copy(update={"attempts": attempts})
        return HealthChange(self._health, change.event, change.detail, change.outage_began)

    def _move(
        self, state: BackendState, detail: str | None, event: str | None, began: bool
    ) -> HealthChange:
        self._health = self._health.model_copy(
            update={"state": state, "detail": detail, "since": utcnow()}
        )
        return HealthChange(self._health, event, detail, began)
