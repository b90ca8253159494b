"""`acs-bridge doctor [--json] [--start]`: load the settings, run the checks, print, exit."""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack

import uvloop

from app.doctor.report import Report
from app.doctor.runner import run_doctor, started_service
from app.settings import ConfigurationError, Settings, load_settings


def run_command(*, as_json: bool = False, start: bool = False) -> int:
    """Exit status: 0 nothing failed, 1 a check failed, 2 the settings cannot load."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"acs-bridge doctor: the settings do not load: {exc}", file=sys.stderr)
        return 2
    try:
        report = uvloop.run(_run(settings, start=start))
    except ConfigurationError as exc:  # --start: the app refused the settings
        print(f"acs-bridge doctor: cannot start the service: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # --start: the port is taken (the service runs already?)
        print(f"acs-bridge doctor: cannot start the service: {exc}", file=sys.stderr)
        return 2
    print(report.json() if as_json else report.text())
    return report.exit_code


async def _run(settings: Settings, *, start: bool) -> Report:
    async with AsyncExitStack() as stack:
        if start:
            await stack.enter_async_context(started_service(settings))
        return await run_doctor(settings)
