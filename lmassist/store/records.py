"""The history's records (a conversation, a message, a search hit) and how rows become them."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

Status = Literal["complete", "interrupted", "error", "pending"]
STATUSES: tuple[str, ...] = ("complete", "interrupted", "error", "pending")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
TITLE_WIDTH = 60


class Record:
    """A history record as JSON-ready fields, in declaration order (times in ISO 8601)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class Conversation(Record):
    id: str
    title: str | None
    model: str | None
    settings: dict[str, Any]
    created: datetime
    updated: datetime
    message_count: int = 0

    @property
    def display_title(self) -> str:
        return self.title or "Untitled conversation"


@dataclass
class StoredMessage(Record):
    id: int
    conversation_id: str
    role: str
    content: str
    model: str | None
    options: dict[str, Any] | None
    stats: dict[str, Any] | None
    status: str
    created: datetime


@dataclass
class SearchHit(Record):
    conversation_id: str
    conversation_title: str | None
    message_id: int
    role: str
    snippet: str  # the matching passage, matched words wrapped in the ``highlight`` markers
    created: datetime
    score: float = 0.0  # bm25: lower is a better match


def utc_now() -> str:
    """Fixed-width ISO 8601 in UTC, so that text order is time order (ORDER BY, MAX())."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def new_id() -> str:
    """A conversation id: 12 hex digits of milliseconds then 4 random ones, so ids sort by time."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(16):04x}"


def short_title(text: str, width: int = TITLE_WIDTH) -> str | None:
    """A title from a message: whitespace collapsed and cut at a word near ``width`` characters."""
    flat = " ".join(text.split())
    if not flat:
        return None
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def to_json(value: Any) -> str | None:
    """Options and stats arrive as dicts or as the generation module's dataclasses."""
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


CONV_SELECT = (
    "SELECT c.id, c.title, c.model, c.settings, c.created, c.updated, "
    "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c"
)
MSG_SELECT = "SELECT id, conversation_id, role, content, model, options, stats, status, created FROM messages"


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    return Conversation(
        id=row[0],
        title=row[1],
        model=row[2],
        settings=json.loads(row[3] or "{}"),
        created=parse_time(row[4]),
        updated=parse_time(row[5]),
        message_count=row[6],
    )


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        id=row[0],
        conversation_id=row[1],
        role=row[2],
        content=row[3],
        model=row[4],
        options=from_json(row[5]),
        stats=from_json(row[6]),
        status=row[7],
        created=parse_time(row[8]),
    )
