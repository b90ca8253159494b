"""The settings themselves: what the service would refuse to start with, said up front."""

from __future__ import annotations

from app.doctor.report import CheckResult, failed, passed, skipped, warned
from app.security.startup import InsecureConfiguration, check_secure_configuration
from app.settings import Settings


def check_security_settings(settings: Settings) -> CheckResult:
    """`settings.security`: every route the world reaches is authenticated."""
    name = "settings.security"
    if not settings.acs_configured:
        return skipped(name, "no ACS configured: the embedded emulator is the service's ACS")
    try:
        check_secure_configuration(settings)
    except InsecureConfiguration as exc:
        return failed(name, "the service refuses to start with these settings", str(exc))
    if settings.allow_insecure_development:
        return warned(
            name,
            "ALLOW_INSECURE_DEVELOPMENT=true: checks may be off",
            "set ACS_RESOURCE_ID, EVENTGRID_SECRET and CONTROL_API_KEY, and turn it off",
        )
    return passed(name, "ACS tokens, the Event Grid secret and the control key are all checked")
