"""What an operator sees of the service: metrics, logs, telemetry and the console's live feed.

metrics.py       `Metrics` (one Prometheus registry per app) and `SessionMetrics` (batched flushes)
http_metrics.py  ASGI middleware counting requests by route template and status
logging.py       `configure_logging`, `bind_call`: JSON or text lines carrying the call's ids
telemetry.py     `configure_telemetry`: Azure Monitor via OpenTelemetry, only when configured
console_feed.py  `EventHub`: in-process pub/sub of call updates and audio levels
sse.py           the console's Server-Sent Events stream
observed_store.py `ObservedCallStore`: a CallStore that publishes changes and counts calls
levels.py        audio levels (RMS) for the console's meters
"""
