"""Secure by default: with a real ACS resource configured, refuse to start with a check left off."""

from __future__ import annotations

from app.settings import ConfigurationError, Settings


class InsecureConfiguration(ConfigurationError):
    """The service would be reachable from the internet without authentication."""


def check_secure_configuration(settings: Settings) -> None:
    """Raise `InsecureConfiguration` naming the settings to set, unless the configuration is
    safe, ACS is not configured, or ALLOW_INSECURE_DEVELOPMENT=true."""
    half_entra = bool(settings.eventgrid_entra_audience) != bool(settings.eventgrid_entra_tenant_id)
    if half_entra:
        # A half-configured option is a mistake, never a development shortcut.
        raise InsecureConfiguration(
            "EVENTGRID_ENTRA_AUDIENCE and EVENTGRID_ENTRA_TENANT_ID must be set together"
        )
    if not settings.acs_configured or settings.allow_insecure_development:
        return
    missing = insecure_settings(settings)
    if missing:
        raise InsecureConfiguration(
            "ACS is configured but requests would not be authenticated: set "
            + "; ".join(missing)
            + " (or ALLOW_INSECURE_DEVELOPMENT=true for local development only)"
        )


def insecure_settings(settings: Settings) -> list[str]:
    """What is missing for every route to be authenticated, one entry per check."""
    missing: list[str] = []
    if not settings.acs_resource_id:
        missing.append("ACS_RESOURCE_ID (verifies ACS callback and media tokens)")
    entra = settings.eventgrid_entra_audience and settings.eventgrid_entra_tenant_id
    # An empty SecretStr is falsy: an empty secret counts as unset.
    if not settings.eventgrid_secret and not entra:
        missing.append(
            "EVENTGRID_SECRET, or EVENTGRID_ENTRA_AUDIENCE and EVENTGRID_ENTRA_TENANT_ID "
            "(authenticates the Event Grid webhook)"
        )
    if not settings.control_api_key:
        missing.append("CONTROL_API_KEY (protects /api/calls)")
    return missing
