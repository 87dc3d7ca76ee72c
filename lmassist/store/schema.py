"""The history's schema, and the migrations that bring any older file up to it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA_V1 = (
    """CREATE TABLE conversations (
        id       TEXT PRIMARY KEY,
        title    TEXT,
        model    TEXT,
        settings TEXT NOT NULL DEFAULT '{}',
        created  TEXT NOT NULL,
        updated  TEXT NOT NULL
    )""",
    "CREATE INDEX conversations_updated ON conversations(updated)",
    """CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content         TEXT NOT NULL DEFAULT '',
        model           TEXT,
        options         TEXT,
        stats           TEXT,
        status          TEXT NOT NULL DEFAULT 'complete'
                        CHECK (status IN ('complete', 'interrupted', 'error', 'pending')),
        created         TEXT NOT NULL
    )""",
    "CREATE INDEX messages_conversation ON messages(conversation_id, id)",
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content='messages', content_rowid='id', tokenize='porter unicode61'
    )""",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
)


def _schema_v1(conn: sqlite3.Connection) -> None:
    # Statement by statement: ``executescript`` would commit the migration's transaction first.
    for statement in _SCHEMA_V1:
        conn.execute(statement)


# MIGRATIONS[n] brings a database from user_version n to n + 1. Append, never edit, so that a file
# written by any older release can be brought up to date one step at a time.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1]
SCHEMA_VERSION = len(MIGRATIONS)

OUR_TABLES = {"conversations", "messages", "messages_fts"}
