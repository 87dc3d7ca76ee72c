"""Conversation history in SQLite, with full-text search.

The history is the one thing lmassist writes that users cannot get back, so this package is built to
not lose it: every write is its own short transaction, committed before the call returns (a message
saved before generation starts survives the process being killed); WAL mode plus a busy timeout and a
retry let two instances write at once; a file that is not our database is reported, never
overwritten. ``PRAGMA user_version`` records the schema so later releases can migrate old files.

Only the standard library is used (``sqlite3`` with FTS5), so opening the history costs nothing.
The package by concern: :mod:`~lmassist.store.schema` (tables and migrations),
:mod:`~lmassist.store.database` (opening, transactions, ids), :mod:`~lmassist.store.history`
(conversations and messages: :class:`Store`), :mod:`~lmassist.store.search`,
:mod:`~lmassist.store.export`, :mod:`~lmassist.store.attachments` (each attached content once, by
hash), :mod:`~lmassist.store.locks` (one turn at a time per conversation)
and :mod:`~lmassist.store.records`. What a model is shown of a stored conversation is not storage:
see :mod:`lmassist.conversation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lmassist.store.attachments import AttachmentLike, StoredAttachment
from lmassist.store.database import BUSY_TIMEOUT_S, LOCK_RETRY_S
from lmassist.store.export import citations_of, markdown_transcript
from lmassist.store.history import Store
from lmassist.store.locks import TurnLockCancelled, turn_lock
from lmassist.store.records import (
    ROLES,
    STATUSES,
    TITLE_WIDTH,
    Conversation,
    SearchHit,
    Status,
    StoredMessage,
    new_id,
    short_title,
)
from lmassist.store.schema import MIGRATIONS, SCHEMA_VERSION, SQLITE_HEADER
from lmassist.store.search import fts_query

__all__ = [
    "AttachmentLike", "StoredAttachment", "citations_of",
    "BUSY_TIMEOUT_S", "LOCK_RETRY_S", "MIGRATIONS", "ROLES", "SCHEMA_VERSION", "SQLITE_HEADER", "STATUSES",
    "TITLE_WIDTH", "Conversation", "SearchHit", "Status", "Store", "StoredMessage", "TurnLockCancelled",
    "fts_query", "markdown_transcript", "new_id", "open_store", "short_title", "turn_lock",
]


@contextmanager
def open_store(path: Path | str | None = None) -> Iterator[Store]:
    """``with open_store() as store:`` for callers that only need the history briefly."""
    store = Store(path)
    try:
        yield store
    finally:
        store.close()
