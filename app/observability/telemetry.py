"""OpenTelemetry traces, metrics and logs to Azure Monitor, when a connection string is set.

Off (no APPLICATIONINSIGHTS_CONNECTION_STRING): nothing is imported and nothing is wrapped, so
the media path costs exactly what it costs without this module. On: the Azure Monitor distro
(optional extra `acs-bridge[azure-monitor]`) exports HTTP request spans, Azure SDK calls (ACS
Call Automation) and log records; the media WebSocket, the event stream and the probes are not
traced (one span per media message would cost more than the relay itself).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import FastAPI

from app.observability.logging import CallContextFilter
from app.security.redaction import SecretRedactionFilter
from app.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = "acs-bridge"
INSTALL_HINT = "pip install 'acs-bridge[azure-monitor]'"
# Regular expressions searched in the request URL; a comma separates them.
UNTRACED_URLS = r"/ws(\?|$),/metrics$,/healthz$,/readyz$,/api/events(\?|$)"


def configure_telemetry(settings: Settings, app: FastAPI) -> bool:
    """Export to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set; True if on.

    Once per process: OpenTelemetry's providers are process-wide.
    """
    secret = settings.applicationinsights_connection_string
    if secret is None or not secret.get_secret_value():
        return False
    try:
        distro: Any = importlib.import_module("azure.monitor.opentelemetry")
        fastapi_otel: Any = importlib.import_module("opentelemetry.instrumentation.fastapi")
        resources: Any = importlib.import_module("opentelemetry.sdk.resources")
    except ImportError:
        log.warning(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry is "
            "not installed; telemetry stays off. Install it with: %s",
            INSTALL_HINT,
        )
        return False
    handlers_before = set(logging.getLogger().handlers)
    distro.configure_azure_monitor(
        connection_string=secret.get_secret_value(),
        resource=resources.Resource.create(
            {"service.name": SERVICE_NAME, "service.instance.id": settings.instance_id}
        ),
        # The distro would instrument FastAPI apps created from now on; ours exists already.
        instrumentation_options={"fastapi": {"enabled": False}},
    )
    fastapi_otel.FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS)
    _filter_new_handlers(handlers_before, settings.instance_id)
    log.info("telemetry: exporting to Azure Monitor")
    return True


def _filter_new_handlers(before: set[logging.Handler], instance_id: str) -> None:
    # The exporter's log handler gets the call ids (as custom dimensions) and redaction too.
    for handler in logging.getLogger().handlers:
        if handler not in before:
            handler.addFilter(CallContextFilter(instance_id))
            handler.addFilter(SecretRedactionFilter())
