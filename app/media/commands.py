"""What other instances (or this one) may ask of a live media session, over the call bus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.backends.base import CallEventIn
from app.calls.call_bus import BusCommand, CommandFailed, CommandHandler
from app.media.session import MediaSession


def media_commands(session: MediaSession) -> CommandHandler:
    """The bus handler of `session`: `stop_audio` (barge-in) and `end_media`."""

    async def handle(command: BusCommand) -> Mapping[str, Any]:
        if command.name == "stop_audio":
            output = session.output
            if output is None:
                raise CommandFailed("media_not_ready", "no AudioMetadata received yet")
            queued = output.queued_frames
            output.stop_audio()
            return {"stopped": True, "dropped_frames": queued}
        if command.name == "call_event":
            data = command.args.get("data")
            event = CallEventIn(
                name=str(command.args.get("name", "")),
                data=data if isinstance(data, dict) else {},
            )
            return {"told": session.tell(event)}
        if command.name == "end_media":
            session.end(str(command.args.get("reason", "ended by the control API")), 1000)
            return {"ending": True}
        raise CommandFailed("unknown_command", f"unknown media command {command.name!r}")

    return handle
