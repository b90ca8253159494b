"""The conversation so far, as text, so a new session can be told what was said (pure).

A reconnect or a renewal opens a new, empty Realtime session. Replaying the transcripts as
`conversation.item.create` messages gives the model the context back. Lines keep the order in
which their items entered the conversation, not the order their transcripts arrived: a
caller's transcription often completes after the model has started to answer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from openai.types.realtime.conversation_item_create_event_param import (
    ConversationItemCreateEventParam,
)

Role = Literal["caller", "agent"]
MAX_REPLAYED_LINES = 60


INTERRUPTED = "… [interrupted by the caller]"


@dataclass(slots=True)
class Line:
    role: Role
    text: str | None = None
    heard: float | None = None  # an agent line cut short: the fraction the caller heard

    def replayed_text(self) -> str | None:
        """The text a new session is told: of a cut-short line, only what the caller heard."""
        if self.text is None or self.heard is None:
            return self.text
        words = self.text.split()
        # The transcript is spread over the audio evenly enough for context; the model is told
        # the line was cut, so it does not assume the caller heard the rest.
        kept = round(len(words) * self.heard)
        return " ".join(words[:kept]) + INTERRUPTED if kept else None


class ConversationHistory:
    """Transcript lines keyed by Realtime item id, oldest first (bounded)."""

    def __init__(self, max_lines: int = MAX_REPLAYED_LINES) -> None:
        self._lines: OrderedDict[str, Line] = OrderedDict()
        self._max_lines = max_lines

    def __len__(self) -> int:
        return sum(1 for line in self._lines.values() if line.text)

    def reserve(self, item_id: str, role: Role) -> None:
        """Hold the item's place in the conversation before its transcript arrives."""
        if item_id not in self._lines:
            self._lines[item_id] = Line(role)
            self._trim()

    def record(self, item_id: str, role: Role, text: str) -> None:
        """Set the item's transcript (appending the item if it had no place yet)."""
        line = self._lines.get(item_id)
        if line is None:
            self._lines[item_id] = Line(role, text)
            self._trim()
        else:
            line.text = text

    def cut(self, item_id: str, heard: float) -> None:
        """The caller barged in on agent item `item_id` after hearing `heard` (0-1) of it."""
        self.reserve(item_id, "agent")
        self._lines[item_id].heard = max(0.0, min(heard, 1.0))

    def lines(self) -> list[tuple[Role, str]]:
        """The transcribed lines, oldest first."""
        return [(line.role, line.text) for line in self._lines.values() if line.text]

    def replay(self) -> list[ConversationItemCreateEventParam]:
        """`conversation.item.create` messages that rebuild the conversation in a new session;
        an interrupted agent line is replayed as far as the caller heard it (or not at all)."""
        events: list[ConversationItemCreateEventParam] = []
        for line in self._lines.values():
            text = line.replayed_text()
            if not text:
                continue
            if line.role == "caller":
                events.append(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": text}],
                        },
                    }
                )
            else:
                events.append(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": text}],
                        },
                    }
                )
        return events

    def _trim(self) -> None:
        while len(self._lines) > self._max_lines:
            self._lines.popitem(last=False)
