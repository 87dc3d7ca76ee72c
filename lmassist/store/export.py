"""A conversation written out: a Markdown transcript, or JSON with every row's stats."""

from __future__ import annotations

import json
from collections.abc import Sequence

from lmassist.errors import LMAssistError
from lmassist.store.records import Conversation, StoredMessage
from lmassist.store.schema import SCHEMA_VERSION

FORMATS = ("md", "json")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise LMAssistError(f"unknown export format {fmt!r}; use md or json")


def export_text(conv: Conversation, messages: Sequence[StoredMessage], fmt: str) -> str:
    """The conversation in ``fmt`` (``"md"`` or ``"json"``)."""
    if fmt == "json":
        data = {"format": "lmassist.conversation", "schema": SCHEMA_VERSION, **conv.to_dict()}
        data["messages"] = [m.to_dict() for m in messages]
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return markdown_transcript(conv, messages)


def markdown_transcript(conv: Conversation, messages: Sequence[StoredMessage]) -> str:
    """A readable transcript: what a user would paste into an issue or a note."""
    created = conv.created.strftime("%Y-%m-%d %H:%M UTC")
    facts = [f"conversation `{conv.id}`", f"started {created}", f"{len(messages)} messages"]
    if conv.model:
        facts.insert(1, f"model `{conv.model}`")
    lines = [f"# {conv.display_title}", "", "*" + " · ".join(facts) + "*", ""]
    for m in messages:
        head = m.role.capitalize()
        if m.model and m.role == "assistant":
            head += f" · `{m.model}`"
        if m.status != "complete":
            head += f" ({m.status})"
        lines += [f"## {head}", "", m.content.rstrip("\n") if m.content else "*(empty)*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
