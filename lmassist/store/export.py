"""A conversation written out: a Markdown transcript, or JSON with every row's stats.

Both carry the conversation's attachments (each content once, with every name it was attached
under and its sha256) and the citations a ``--docs`` answer was given, so an export says what the
model was shown and where its answers came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from lmassist.errors import LMAssistError
from lmassist.progress import human_size
from lmassist.store.attachments import StoredAttachment
from lmassist.store.records import Conversation, StoredMessage
from lmassist.store.schema import SCHEMA_VERSION

FORMATS = ("md", "json")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise LMAssistError(f"unknown export format {fmt!r}; use md or json")


def export_text(conv: Conversation, messages: Sequence[StoredMessage], fmt: str,
                attachments: Sequence[StoredAttachment] = ()) -> str:
    """The conversation in ``fmt`` (``"md"`` or ``"json"``)."""
    if fmt == "json":
        data = {"format": "lmassist.conversation", "schema": SCHEMA_VERSION, **conv.to_dict()}
        links = _links(attachments)
        data["messages"] = [{**m.to_dict(), "attachments": links.get(m.id, [])} for m in messages]
        data["attachments"] = _contents(attachments)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return markdown_transcript(conv, messages, attachments)


def _links(attachments: Sequence[StoredAttachment]) -> dict[int, list[dict[str, Any]]]:
    links: dict[int, list[dict[str, Any]]] = {}
    for a in attachments:
        links.setdefault(a.message_id, []).append({"name": a.name, "sha256": a.sha256, "size": a.size})
    return links


def _contents(attachments: Sequence[StoredAttachment]) -> list[dict[str, Any]]:
    """Each content once, with every name it was attached under, first attached first."""
    by_hash: dict[str, dict[str, Any]] = {}
    for a in attachments:
        entry = by_hash.setdefault(a.sha256, {"sha256": a.sha256, "size": a.size, "names": [], "text": a.text})
        if a.name not in entry["names"]:
            entry["names"].append(a.name)
    return list(by_hash.values())


def citations_of(message: StoredMessage) -> list[str]:
    """The ``path:line`` citations saved with a ``--docs`` answer (none for any other message)."""
    found = (message.options or {}).get("citations") or []
    return [f"{c['path']}:{c['line']}" for c in found if isinstance(c, dict) and "path" in c and "line" in c]


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``, so the file cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def markdown_transcript(conv: Conversation, messages: Sequence[StoredMessage],
                        attachments: Sequence[StoredAttachment] = ()) -> str:
    """A readable transcript: what a user would paste into an issue or a note."""
    created = conv.created.strftime("%Y-%m-%d %H:%M UTC")
    facts = [f"conversation `{conv.id}`", f"started {created}", f"{len(messages)} messages"]
    if conv.model:
        facts.insert(1, f"model `{conv.model}`")
    lines = [f"# {conv.display_title}", "", "*" + " · ".join(facts) + "*", ""]
    links = _links(attachments)
    for m in messages:
        head = m.role.capitalize()
        if m.model and m.role == "assistant":
            head += f" · `{m.model}`"
        if m.status != "complete":
            head += f" ({m.status})"
        lines += [f"## {head}", "", m.content.rstrip("\n") if m.content else "*(empty)*", ""]
        if m.id in links:
            files = ", ".join(f"`{a['name']}` ({human_size(a['size'])}, sha256 `{a['sha256'][:12]}`)"
                              for a in links[m.id])
            lines += [f"*Attached: {files}*", ""]
        cited = citations_of(m)
        if cited:
            lines += ["Sources:", "", *(f"- `{c}`" for c in cited), ""]
    contents = _contents(attachments)
    if contents:
        lines += ["## Attachments", ""]
        for c in contents:
            fence = _fence(c["text"])
            lines += [f"### {', '.join(c['names'])}", "", f"*sha256 `{c['sha256']}` · {human_size(c['size'])}*", "",
                      fence, c["text"].rstrip("\n"), fence, ""]
    return "\n".join(lines).rstrip("\n") + "\n"
