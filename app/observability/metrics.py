"""Prometheus metrics of one app instance, each `Metrics` in its own `CollectorRegistry`.

The media hot path (50 frames/s per call and direction) never touches a Prometheus object: a
session keeps plain int counters (`MediaStats`) and hands them to `SessionMetrics.flush` about
once a second, which adds only the increase since the previous flush. Everything else here
(calls, sessions, HTTP requests, backend errors) happens a few times per call.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

NAMESPACE = "acs_bridge"
# Outbound frames queued for pacing (20 ms each): 4 is the default lead, 1500 is 30 s of audio.
QUEUE_DEPTH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1500)
# What the bridge adds per direction: under a frame (20 ms) is the target, a pacing lead (80 ms)
# or more is a fault.
BRIDGE_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5)
TURN_LATENCY_BUCKETS_S = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
HTTP_DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics; `render` gives the Prometheus exposition of this registry only."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, ns = self.registry, NAMESPACE
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        self.calls_active = Gauge(
            "calls_active", "Calls not yet disconnected", namespace=ns, registry=r
        )
        self.calls_ended = Counter(
            "calls_ended", "Calls ended, by outcome", ["outcome"], namespace=ns, registry=r
        )
        self.calls_by_agent = Counter(
            "calls_by_agent",
            "Calls started, by agent (AGENTS_FILE)",
            ["agent"],
            namespace=ns,
            registry=r,
        )
        self.calls_unrouted = Counter(
            "calls_unrouted",
            "Incoming calls rejected: no route, no default agent",
            namespace=ns,
            registry=r,
        )
        self.call_end_webhooks = Counter(
            "call_end_webhooks",
            "Call-end webhook deliveries, by outcome (delivered, failed)",
            ["outcome"],
            namespace=ns,
            registry=r,
        )
        self.media_sessions_active = Gauge(
            "media_sessions_active", "Open media WebSockets", namespace=ns, registry=r
        )
        self.media_sessions = Counter(
            "media_sessions", "Media WebSockets accepted", namespace=ns, registry=r
        )
        self.media_frames = Counter(
            "media_frames",
            "Audio frames relayed, by direction",
            ["direction"],
            namespace=ns,
            registry=r,
        )
        self._frames_in = self.media_frames.labels("in")
        self._frames_out = self.media_frames.labels("out")
        self.malformed_frames = Counter(
            "media_malformed_frames",
            "Inbound media messages skipped as malformed",
            namespace=ns,
            registry=r,
        )
        self.dropped_frames = Counter(
            "media_dropped_frames",
            "Inbound audio frames dropped because the backend fell behind",
            namespace=ns,
            registry=r,
        )
        self.outbound_queue = Histogram(
            "media_outbound_queue_frames",
            "Outbound frames waiting for pacing, sampled per session",
            namespace=ns,
            registry=r,
            buckets=QUEUE_DEPTH_BUCKETS,
        )
        self.bridge_latency = CountedHistogram(
            f"{ns}_bridge_latency_seconds",
            "What the bridge adds to the audio, by direction (in: every caller frame, arrival "
            "to handed to the backend's model or downstream; out: a response's first audio to "
            "its first frame sent to ACS)",
            ("direction", "backend"),
            BRIDGE_LATENCY_BUCKETS_S,
        )
        r.register(self.bridge_latency)
        self.turn_latency = CountedHistogram(
            f"{ns}_turn_latency_seconds",
            "Caller's end of speech (as the model or VAD reports it) to the first agent audio "
            "sent to ACS",
            ("backend",),
            TURN_LATENCY_BUCKETS_S,
        )
        r.register(self.turn_latency)
        self.backend_errors = Counter(
            "backend_errors",
            "Errors reported by media backends",
            ["backend"],
            namespace=ns,
            registry=r,
        )
        self.backend_reconnects = Counter(
            "backend_reconnects",
            "Media backend reconnections",
            ["backend"],
            namespace=ns,
            registry=r,
        )
        self.backend_outages = Counter(
            "backend_outages",
            "Times a call's backend became unavailable or failed (BackendUnavailable/Failed)",
            ["backend"],
            namespace=ns,
            registry=r,
        )
        self.failovers = Counter(
            "failovers",
            "Calls with no working backend handed to BACKEND_FAILOVER, by action and outcome",
            ["action", "outcome"],
            namespace=ns,
            registry=r,
        )
        self.tool_calls = Counter(
            "tool_calls",
            "Voice agent tool calls, by tool and outcome (ok, error)",
            ["tool", "outcome"],
            namespace=ns,
            registry=r,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests, by method, route template and status",
            ["method", "route", "status"],
            namespace=ns,
            registry=r,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration, by method and route template",
            ["method", "route"],
            namespace=ns,
            registry=r,
            buckets=HTTP_DURATION_BUCKETS_S,
        )

    # --- calls ---------------------------------------------------------------------------------
    def call_started(self) -> None:
        """A call record appeared (incoming call accepted or outbound call placed)."""
        self.calls_active.inc()

    def call_ended(self, outcome: str, *, was_active: bool = True) -> None:
        """A call disconnected; `outcome` is `completed`, `media_failed` or `failed`."""
        if was_active:
            self.calls_active.dec()
        self.calls_ended.labels(outcome).inc()

    def call_routed(self, agent: str) -> None:
        """A call started with `agent`."""
        self.calls_by_agent.labels(agent).inc()

    def call_unrouted(self) -> None:
        """An incoming call matched no route and there is no default agent: rejected."""
        self.calls_unrouted.inc()

    def call_end_webhook(self, outcome: str) -> None:
        """A call's record was delivered (`delivered`) or given up on (`failed`)."""
        self.call_end_webhooks.labels(outcome).inc()

    # --- media (per session, or batched per flush) ----------------------------------------------
    def media_session_started(self) -> None:
        self.media_sessions.inc()
        self.media_sessions_active.inc()

    def media_session_ended(self) -> None:
        self.media_sessions_active.dec()

    def add_frames(
        self, *, in_: int = 0, out: int = 0, malformed: int = 0, dropped: int = 0
    ) -> None:
        """Add frame counts accumulated since the last call; call it about once a second, never
        per frame (a Prometheus increment takes a lock)."""
        if in_:
            self._frames_in.inc(in_)
        if out:
            self._frames_out.inc(out)
        if malformed:
            self.malformed_frames.inc(malformed)
        if dropped:
            self.dropped_frames.inc(dropped)

    def observe_outbound_queue(self, frames: int) -> None:
        """Sample one session's outbound queue depth (once per flush)."""
        self.outbound_queue.observe(frames)

    def observe_latency(
        self, backend: str, inbound: list[float], outbound: list[float], turns: list[float]
    ) -> None:
        """One session's latency samples (seconds) since its last flush."""
        if inbound:
            self.bridge_latency.add(("in", backend), inbound)
        if outbound:
            self.bridge_latency.add(("out", backend), outbound)
        if turns:
            self.turn_latency.add((backend,), turns)

    def backend_error(self, backend: str, count: int = 1) -> None:
        self.backend_errors.labels(backend).inc(count)

    def backend_reconnect(self, backend: str) -> None:
        self.backend_reconnects.labels(backend).inc()

    def backend_outage(self, backend: str) -> None:
        self.backend_outages.labels(backend).inc()

    def failover(self, action: str, outcome: str) -> None:
        self.failovers.labels(action, outcome).inc()

    def tool_call(self, tool: str, outcome: str) -> None:
        """Count one tool call; `tool` is a configured name (or "unknown"), so labels stay few."""
        self.tool_calls.labels(tool, outcome).inc()

    # --- HTTP -----------------------------------------------------------------------------------
    def observe_http(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """Count one request; `seconds` None leaves the duration out (event streams)."""
        self.http_requests.labels(method, route, str(status)).inc()
        if seconds is not None:
            self.http_duration.labels(method, route).observe(seconds)

    # --- exposition -----------------------------------------------------------------------------
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class CountedHistogram(Collector):
    """A Prometheus histogram fed a session's samples in bulk at its flush: each is counted
    into its bucket with `bisect` (C), where `Histogram.observe` takes a lock and walks the
    buckets in Python (a few us per frame on the media path, measured in bench/)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(buckets)
        # Per label values: the count in each bucket (the last one: +Inf), and the sum.
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def add(self, labels: tuple[str, ...], samples: Sequence[float]) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self._bounds) + 1), [0.0])
        counts, total = series
        bounds, where = self._bounds, bisect.bisect_left
        for value in samples:
            counts[where(bounds, value)] += 1
        total[0] += math.fsum(samples)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            self._name, self._documentation, labels=list(self._labelnames)
        )
        for labels, (counts, total) in self._series.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, math.inf), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
            family.add_metric(list(labels), buckets, total[0])
        yield family


class MediaCounts(Protocol):
    """A media session's cumulative counters (`app.media.stats.MediaStats` has them)."""

    @property
    def frames_in(self) -> int: ...
    @property
    def frames_out(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def backend_errors(self) -> int: ...


class SessionMetrics:
    """One media session's link to `Metrics`: counts the session, and turns its cumulative
    counters into increments on `flush` (call it once a second and when the session ends)."""

    __slots__ = (
        "_backend",
        "_dropped",
        "_errors",
        "_in",
        "_malformed",
        "_metrics",
        "_open",
        "_out",
    )

    def __init__(self, metrics: Metrics, backend: str) -> None:
        self._metrics = metrics
        self._backend = backend
        self._in = self._out = self._malformed = self._dropped = self._errors = 0
        self._open = False

    def started(self) -> None:
        """The media socket was accepted."""
        if not self._open:
            self._open = True
            self._metrics.media_session_started()

    def ended(self, counts: MediaCounts | None = None) -> None:
        """The session is over: flush `counts` one last time; safe to call twice."""
        if counts is not None:
            self.flush(counts)
        if self._open:
            self._open = False
            self._metrics.media_session_ended()

    def flush(self, counts: MediaCounts, outbound_queue: int | None = None) -> None:
        """Add what `counts` grew by since the previous flush; sample the outbound queue."""
        m = self._metrics
        m.add_frames(
            in_=counts.frames_in - self._in,
            out=counts.frames_out - self._out,
            malformed=counts.malformed - self._malformed,
            dropped=counts.dropped - self._dropped,
        )
        errors = counts.backend_errors - self._errors
        if errors > 0:
            m.backend_error(self._backend, errors)
        self._in, self._out = counts.frames_in, counts.frames_out
        self._malformed, self._dropped = counts.malformed, counts.dropped
        self._errors = counts.backend_errors
        if outbound_queue is not None:
            m.observe_outbound_queue(outbound_queue)

    def latency(self, inbound: list[float], outbound: list[float], turns: list[float]) -> None:
        """The call's latency samples (seconds) since the last flush; called with it."""
        self._metrics.observe_latency(self._backend, inbound, outbound, turns)

    def backend_reconnected(self) -> None:
        self._metrics.backend_reconnect(self._backend)

    def backend_outage(self) -> None:
        self._metrics.backend_outage(self._backend)

    def tool_called(self, tool: str, outcome: str) -> None:
        """A voice agent's tool call (a few per call: counted at once, not at a flush)."""
        self._metrics.tool_call(tool, outcome)
