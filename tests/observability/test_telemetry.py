from __future__ import annotations

import logging
import sys

import pytest
from fastapi import FastAPI

from app.observability.telemetry import INSTALL_HINT, configure_telemetry
from app.settings import Settings

CONNECTION_STRING = "InstrumentationKey=00000000-0000-0000-0000-000000000000"
TELEMETRY_MODULES = ("azure.monitor", "opentelemetry.sdk", "opentelemetry.instrumentation")


def loaded_telemetry_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith(TELEMETRY_MODULES)}


def test_telemetry_off_imports_nothing_and_leaves_the_app_alone() -> None:
    before = loaded_telemetry_modules()
    app = FastAPI()
    middleware_before = list(app.user_middleware)
    assert configure_telemetry(Settings(_env_file=None), app) is False
    assert loaded_telemetry_modules() == before
    assert app.user_middleware == middleware_before


def test_missing_package_warns_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", None)
    settings = Settings(_env_file=None, applicationinsights_connection_string=CONNECTION_STRING)
    with caplog.at_level(logging.WARNING, logger="app.observability.telemetry"):
        assert configure_telemetry(settings, FastAPI()) is False
    assert INSTALL_HINT in caplog.text
    assert "pip install 'acs-bridge[azure-monitor]'" in caplog.text
