"""Checks of request bodies, each failure a 400 naming the offending field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.emulator.errors import bad_request

TRANSPORT_TYPES = frozenset({"websocket"})
CONTENT_TYPES = frozenset({"audio"})
AUDIO_CHANNEL_TYPES = frozenset({"mixed", "unmixed"})
AUDIO_FORMATS = frozenset({"pcm16KMono", "pcm24KMono"})


def required_str(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise bad_request(f"The field {field} is required.")
    return value


def optional_str(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"The field {field} must be a string.")
    return value


def targets(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`targets`: a non-empty list of identifier models."""
    value = body.get("targets")
    if not isinstance(value, list) or not value:
        raise bad_request("The field targets must list at least one participant.")
    if not all(isinstance(item, dict) for item in value):
        raise bad_request("Each target must be an identifier object.")
    return [dict(item) for item in value]


def media_streaming_options(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """`mediaStreamingOptions` as received, after checking the fields ACS requires."""
    options = body.get("mediaStreamingOptions")
    if options is None:
        return None
    if not isinstance(options, dict):
        raise bad_request("The field mediaStreamingOptions must be an object.")
    url = required_str(options, "transportUrl")
    if not url.startswith(("ws://", "wss://")):
        raise bad_request("The field mediaStreamingOptions.transportUrl must be a WebSocket URL.")
    _one_of(options, "transportType", TRANSPORT_TYPES, required=True)
    _one_of(options, "contentType", CONTENT_TYPES, required=True)
    _one_of(options, "audioChannelType", AUDIO_CHANNEL_TYPES, required=True)
    _one_of(options, "audioFormat", AUDIO_FORMATS, required=False)
    for flag in ("startMediaStreaming", "enableBidirectional", "enableDtmfTones"):
        if flag in options and not isinstance(options[flag], bool):
            raise bad_request(f"The field mediaStreamingOptions.{flag} must be a boolean.")
    return dict(options)


def _one_of(
    options: Mapping[str, Any], field: str, allowed: frozenset[str], *, required: bool
) -> None:
    value = options.get(field)
    if value is None and not required:
        return
    # The service reads its enums case-insensitively; the SDK sends them as listed.
    if not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}:
        raise bad_request(
            f"The field mediaStreamingOptions.{field} must be one of {sorted(allowed)}."
        )
