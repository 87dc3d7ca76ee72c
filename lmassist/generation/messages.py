"""Messages: what a conversation is made of, and how a model without a chat template reads one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


# A base model (no chat template) sees a conversation as a plain transcript to continue; these end
# the assistant's turn in it, so a reply stops where the model starts writing the next speaker.
TRANSCRIPT_STOPS = ("\nUser:", "\nAssistant:", "\nSystem:")


def transcript_prompt(messages: Sequence[Message]) -> str:
    """A conversation as plain text for a model without a chat template, ending on the assistant's cue."""
    return "\n".join(f"{m.role.capitalize()}: {m.content.strip()}" for m in messages) + "\nAssistant:"


def as_messages(items: Iterable[Message | dict[str, str]]) -> list[Message]:
    """Accept either Message objects or OpenAI-style dicts, so callers can use either."""
    return [m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in items]

