"""Voice Live's dialect of the Realtime protocol, read and written as the GA one (pure).

Voice Live keeps the preview event names (`response.audio.delta` where GA says
`response.output_audio.delta`) and the preview content types (an assistant message's text is
`text`, not `output_text`). Everything else the conversation uses is the same, so server events
are renamed and then read as the `openai` SDK's GA event models (leniently, as its own client
reads them), and the few client events that differ are rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast, get_args

from openai import BaseModel
from openai.types.realtime.realtime_server_event import RealtimeServerEvent

SERVER_NAMES: Final[Mapping[str, str]] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}


def _event_models() -> dict[str, type[BaseModel]]:
    union, *_ = get_args(RealtimeServerEvent)  # Annotated[Union[...], discriminator]
    models: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        for name in get_args(model.model_fields["type"].annotation):
            models[name] = model
    return models


_MODELS: Final = _event_models()


def server_event(data: Mapping[str, Any]) -> RealtimeServerEvent | None:
    """A Voice Live server event as the GA event it stands for; None for one the GA protocol
    has no counterpart of (avatar, viseme, word timestamps, warnings)."""
    kind = data.get("type")
    if not isinstance(kind, str):
        return None
    kind = SERVER_NAMES.get(kind, kind)
    model = _MODELS.get(kind)
    if model is None:
        return None
    # Unvalidated, as the openai client reads events: a field the GA models lack is kept.
    return cast(RealtimeServerEvent, model.construct(**{**data, "type": kind}))


def client_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A GA client event as Voice Live takes it."""
    if event.get("type") != "conversation.item.create":
        return event
    item = event.get("item")
    if not isinstance(item, Mapping) or item.get("role") != "assistant":
        return event
    content = [
        {**part, "type": "text"} if part.get("type") == "output_text" else part
        for part in item.get("content", ())
    ]
    return {**event, "item": {**item, "content": content}}
