"""Checks of request bodies, each failure a 400 naming the offending field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.emulator.errors import bad_request

TRANSPORT_TYPES = frozenset({"websocket"})
CONTENT_TYPES = frozenset({"audio"})
AUDIO_CHANNEL_TYPES = frozenset({"mixed", "unmixed"})
AUDIO_FORMATS = frozenset({"pcm16KMono", "pcm24KMono"})
# DtmfTone in the REST spec (and the SDK's `DtmfTone` enum).
DTMF_TONES = frozenset(
    {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "a",
        "b",
        "c",
        "d",
        "pound",
        "asterisk",
    }
)
# CommunicationIdentifierModel: the property holding the details of each kind, and the field
# in it that identifies the participant. The SDK sends `rawId` and the property, not `kind`.
IDENTIFIER_KINDS: dict[str, tuple[str, str]] = {
    "phoneNumber": ("phoneNumber", "value"),
    "communicationUser": ("communicationUser", "id"),
    "microsoftTeamsUser": ("microsoftTeamsUser", "userId"),
    "microsoftTeamsApp": ("microsoftTeamsApp", "appId"),
    "teamsExtensionUser": ("teamsExtensionUser", "userId"),
}


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


def identifier_model(
    body: Mapping[str, Any], field: str, *, required: bool
) -> dict[str, Any] | None:
    """A CommunicationIdentifierModel (`targetParticipant`, `transferee`), with `kind` filled in.

    The kind comes from `kind` or, as the SDK sends it, from the one details property present.
    """
    value = body.get(field)
    if value is None:
        if required:
            raise bad_request(f"The field {field} is required.")
        return None
    if not isinstance(value, dict):
        raise bad_request(f"The field {field} must be an identifier object.")
    kind = value.get("kind")
    if kind is None:
        present = [k for k, (prop, _) in IDENTIFIER_KINDS.items() if value.get(prop) is not None]
        if len(present) > 1:
            raise bad_request(f"The field {field} must describe exactly one identifier.")
        kind = present[0] if present else ("unknown" if value.get("rawId") else None)
    if not isinstance(kind, str):
        raise bad_request(f"The field {field} must describe a participant.")
    model = dict(value)
    model["kind"] = kind
    if kind in IDENTIFIER_KINDS:
        prop, key = IDENTIFIER_KINDS[kind]
        details = value.get(prop)
        if not isinstance(details, dict) or not isinstance(details.get(key), str):
            raise bad_request(f"The field {field}.{prop}.{key} is required.")
        if not details[key]:
            raise bad_request(f"The field {field}.{prop}.{key} must not be empty.")
        if kind == "phoneNumber" and not details[key].startswith("+"):
            raise bad_request(f"The field {field}.phoneNumber.value must be in E.164 format.")
    elif not isinstance(value.get("rawId"), str) or not value["rawId"]:
        raise bad_request(f"The field {field} has an unknown kind and no rawId.")
    return model


def dtmf_tones(body: Mapping[str, Any]) -> list[str]:
    """`tones`: a non-empty list of DtmfTone names, read case-insensitively like other enums."""
    value = body.get("tones")
    if not isinstance(value, list) or not value:
        raise bad_request("The field tones must list at least one tone.")
    tones: list[str] = []
    for tone in value:
        if not isinstance(tone, str) or tone.lower() not in DTMF_TONES:
            raise bad_request(f"Invalid tone {tone!r}: expected one of {sorted(DTMF_TONES)}.")
        tones.append(tone.lower())
    return tones


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
