"""Building the Call Automation SDK client from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack

from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential

from app.settings import Settings


async def open_acs_client(settings: Settings, stack: AsyncExitStack) -> CallAutomationClient | None:
    """The aio client for the configured ACS resource (closed by `stack`), or None without one.

    A connection string goes through the constructor, not `from_connection_string`, which
    silently switches an http:// endpoint (the emulator) to https.
    """
    timeout = settings.acs_operation_timeout_s
    parsed = settings.connection_string
    if parsed is not None:
        client = CallAutomationClient(
            parsed.endpoint,
            AzureKeyCredential(parsed.access_key),
            connection_timeout=timeout,
            read_timeout=timeout,
        )
    elif settings.acs_endpoint is not None:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        stack.push_async_callback(credential.close)
        client = CallAutomationClient(
            str(settings.acs_endpoint).rstrip("/"),
            credential,
            connection_timeout=timeout,
            read_timeout=timeout,
        )
    else:
        return None
    stack.push_async_callback(client.close)
    return client
