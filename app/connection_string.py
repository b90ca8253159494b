"""An ACS connection string (`endpoint=...;accesskey=...`), parsed."""

from __future__ import annotations

from urllib.parse import urlsplit


class ConnectionString:
    """An ACS connection string (`endpoint=...;accesskey=...`) split into its parts."""

    def __init__(self, endpoint: str, access_key: str) -> None:
        self.endpoint = endpoint
        self.access_key = access_key

    @classmethod
    def parse(cls, value: str) -> ConnectionString:
        """Parse `endpoint=...;accesskey=...`; keys are case-insensitive, order free."""
        parts: dict[str, str] = {}
        for segment in value.split(";"):
            if not segment.strip():
                continue
            key, sep, val = segment.partition("=")
            if not sep:
                raise ValueError("connection string segments must be key=value")
            parts[key.strip().lower()] = val.strip()
        endpoint = parts.get("endpoint", "")
        access_key = parts.get("accesskey", "")
        if not endpoint or not access_key:
            raise ValueError("connection string needs endpoint=...;accesskey=...")
        scheme = urlsplit(endpoint).scheme
        if scheme not in ("http", "https"):
            raise ValueError("connection string endpoint must be an http(s) URL")
        # The SDK signs the endpoint's host: a trailing slash would change what it signs.
        return cls(endpoint.rstrip("/"), access_key)
