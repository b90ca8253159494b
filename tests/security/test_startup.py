"""Secure by default: with ACS configured, startup needs every check or an explicit dev flag."""

from __future__ import annotations

from typing import Any

import pytest

from app.security.startup import InsecureConfiguration, check_secure_configuration
from app.settings import Settings

ACS = {
    "acs_connection_string": "endpoint=https://x.communication.azure.com/;accesskey=a2V5",
    "public_base_url": "https://bridge.example.com",
}
SECURE = {
    "acs_resource_id": "3c0a5b6e-2f4d-4e1a-9b7c-0d8e6f1a2b3c",
    "eventgrid_secret": "eventgrid-secret",
    "control_api_key": "control-key",
}
ENTRA = {"eventgrid_entra_audience": "api://bridge", "eventgrid_entra_tenant_id": "tenant-id"}


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_without_acs_nothing_is_required() -> None:
    check_secure_configuration(_settings())


def test_acs_with_every_check_starts() -> None:
    check_secure_configuration(_settings(**ACS, **SECURE))


def test_acs_endpoint_alone_counts_as_configured() -> None:
    with pytest.raises(InsecureConfiguration):
        check_secure_configuration(
            _settings(
                acs_endpoint="https://x.communication.azure.com",
                public_base_url="https://bridge.example.com",
            )
        )


def test_entra_can_replace_the_eventgrid_secret() -> None:
    secure = {**SECURE, "eventgrid_secret": None}
    check_secure_configuration(_settings(**ACS, **secure, **ENTRA))


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("acs_resource_id", "ACS_RESOURCE_ID"),
        ("eventgrid_secret", "EVENTGRID_SECRET"),
        ("control_api_key", "CONTROL_API_KEY"),
    ],
)
def test_acs_with_a_check_missing_refuses_to_start_and_says_which(unset: str, named: str) -> None:
    with pytest.raises(InsecureConfiguration) as refused:
        check_secure_configuration(_settings(**ACS, **{**SECURE, unset: None}))
    message = str(refused.value)
    assert named in message
    assert "ALLOW_INSECURE_DEVELOPMENT=true" in message


def test_an_empty_secret_counts_as_missing() -> None:
    with pytest.raises(InsecureConfiguration, match="CONTROL_API_KEY"):
        check_secure_configuration(_settings(**ACS, **{**SECURE, "control_api_key": ""}))


def test_the_development_flag_allows_starting_insecure() -> None:
    check_secure_configuration(_settings(**ACS, allow_insecure_development=True))


@pytest.mark.parametrize("half", ["eventgrid_entra_audience", "eventgrid_entra_tenant_id"])
def test_half_configured_entra_is_refused_even_in_development(half: str) -> None:
    settings = _settings(allow_insecure_development=True, **{half: ENTRA[half]})
    with pytest.raises(InsecureConfiguration, match="must be set together"):
        check_secure_configuration(settings)
