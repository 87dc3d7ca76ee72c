"""Attachments in the history: each content stored once by its hash, linked to the messages that
attached it (:data:`~lmassist.store.schema.MIGRATIONS`' second step made the tables).

The store does not import :mod:`lmassist.attachments` (both are storage; neither should need the
other): anything with ``name``, ``sha256``, ``size`` and ``text`` can be saved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lmassist.store.records import Record


class AttachmentLike(Protocol):
    name: str
    sha256: str
    size: int
    text: str


@dataclass
class StoredAttachment(Record):
    """An attachment as saved: which message attached it, at which place among its files."""

    message_id: int
    position: int
    name: str
    sha256: str
    size: int
    text: str


ATTACHMENT_SELECT = (
    "SELECT l.message_id, l.position, l.name, a.sha256, a.size, a.text "
    "FROM message_attachments l JOIN attachments a ON a.sha256 = l.sha256"
)


def link_attachments(conn: sqlite3.Connection, mid: int, attachments: Sequence[AttachmentLike], now: str) -> None:
    """Save each content once (a hash already stored is not written again) and link it to ``mid``."""
    import hashlib  # here: the history opens on the app's start-up path, and only attaching needs it

    for position, a in enumerate(attachments):
        if hashlib.sha256(a.text.encode("utf-8")).hexdigest() != a.sha256:
            raise ValueError(f"attachment {a.name!r}: its sha256 is not that of its text")
        conn.execute(
            "INSERT OR IGNORE INTO attachments (sha256, size, text, created) VALUES (?, ?, ?, ?)",
            (a.sha256, a.size, a.text, now),
        )
        conn.execute(
            "INSERT INTO message_attachments (message_id, position, sha256, name) VALUES (?, ?, ?, ?)",
            (mid, position, a.sha256, a.name),
        )


def conversation_attachments(conn: sqlite3.Connection, cid: str) -> list[StoredAttachment]:
    """Every attachment of a conversation, in the order they were attached."""
    rows = conn.execute(
        ATTACHMENT_SELECT + " JOIN messages m ON m.id = l.message_id WHERE m.conversation_id = ? "
        "ORDER BY l.message_id, l.position",
        (cid,),
    ).fetchall()
    return [StoredAttachment(*row) for row in rows]
