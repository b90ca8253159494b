"""The doctor's network clients, trusting what the system trusts.

`ssl.create_default_context()` loads OpenSSL's default verify paths, and OpenSSL reads
SSL_CERT_FILE and SSL_CERT_DIR from the environment there: a corporate or test CA set that way
is trusted by every check, as by curl. One context and one httpx client serve every check.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

TIMEOUT_S = 10.0
USER_AGENT = "acs-bridge doctor"


@dataclass(frozen=True, slots=True)
class Clients:
    """What the checks share: the TLS trust and one HTTP client."""

    tls: ssl.SSLContext
    http: httpx.AsyncClient
    timeout_s: float = TIMEOUT_S


def system_trust() -> ssl.SSLContext:
    """A verifying context with the system's CAs (SSL_CERT_FILE / SSL_CERT_DIR honoured)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


@asynccontextmanager
async def open_clients(timeout_s: float = TIMEOUT_S) -> AsyncIterator[Clients]:
    tls = system_trust()
    async with httpx.AsyncClient(
        verify=tls,
        timeout=timeout_s,
        follow_redirects=False,  # a redirect is something to report, not to follow
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # the public URL as ACS reaches it, not through a local proxy
    ) as http:
        yield Clients(tls=tls, http=http, timeout_s=timeout_s)
