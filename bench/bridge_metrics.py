"""What the service itself measured of the latency it adds, read from its /metrics at the end
of a run: `acs_bridge_bridge_latency_seconds{direction}` (every caller frame in, each response
start out) and `acs_bridge_turn_latency_seconds`, as p50 / p99 in ms (interpolated within the
histogram's buckets, as Prometheus' `histogram_quantile` does). The samples cover the whole run,
warm-up included. Servers without those metrics (the floor, older revisions) give nothing."""

from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.request

_TIMEOUT_S = 5.0
_BUCKET = re.compile(
    r'^acs_bridge_bridge_latency_seconds_bucket\{backend="[^"]*",direction="(in|out)",'
    r'le="([^"]+)"\} ([0-9.e+]+)$',
    re.MULTILINE,
)


def bridge_latency_ms(port: int) -> dict[str, list[float]]:
    """Per direction ("in", "out"): [p50 ms, p99 ms, samples]; {} when not measured."""
    text = ""
    with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            text = response.read().decode()
    buckets: dict[str, list[tuple[float, float]]] = {}
    for direction, bound, count in _BUCKET.findall(text):
        buckets.setdefault(direction, []).append((float(bound), float(count)))
    result: dict[str, list[float]] = {}
    for direction, cumulative in buckets.items():
        cumulative.sort()
        total = cumulative[-1][1] if cumulative else 0.0
        if total:
            p50 = quantile(0.5, cumulative) * 1000.0
            p99 = quantile(0.99, cumulative) * 1000.0
            result[direction] = [round(p50, 2), round(p99, 2), total]
    return result


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """`histogram_quantile(q)` over sorted (upper bound, cumulative count) buckets."""
    total = cumulative[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower  # beyond the last finite bucket: its bound is all we know
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower
