"""Doctor fixtures: the test CA trusted through SSL_CERT_FILE, the TLS proxy in front of the
app, and the app started behind it against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppFactory, LiveApp
from tests.doctor.tls_proxy import LocalCA, TlsProxy, make_local_ca, serve_tls_proxy


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return make_local_ca(Path(tmp_path_factory.mktemp("doctor-ca")))


@pytest.fixture
def trust_test_ca(test_ca: LocalCA, monkeypatch: pytest.MonkeyPatch) -> LocalCA:
    """The test CA as the system's trust (SSL_CERT_FILE), as a corporate CA would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return test_ca


@pytest.fixture
async def proxy(trust_test_ca: LocalCA) -> AsyncIterator[TlsProxy]:
    async with serve_tls_proxy(trust_test_ca) as running:
        yield running


PublicAppFactory = Callable[..., AbstractAsyncContextManager[LiveApp]]


@pytest.fixture
def start_public_app(start_app: AppFactory, proxy: TlsProxy) -> PublicAppFactory:
    """Start the app (every check on) with PUBLIC_BASE_URL at the proxy, the proxy to it."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[LiveApp]:
        overrides.setdefault("public_base_url", proxy.url)
        async with start_app(**overrides) as live:
            proxy.upstream_port = int(live.base_url.rsplit(":", 1)[1])
            yield live

    return start
