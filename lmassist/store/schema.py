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


_SCHEMA_V2 = (
    # One row per content: the same file attached to ten conversations is stored once.
    """CREATE TABLE attachments (
        sha256  TEXT PRIMARY KEY,
        size    INTEGER NOT NULL,
        text    TEXT NOT NULL,
        created TEXT NOT NULL
    )""",
    # Which message attached which content, under which name, in which order.
    """CREATE TABLE message_attachments (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        sha256     TEXT NOT NULL REFERENCES attachments(sha256),
        name       TEXT NOT NULL,
        PRIMARY KEY (message_id, position)
    )""",
    "CREATE INDEX message_attachments_sha256 ON message_attachments(sha256)",
    # A content no message links to any more goes with its last link (a deleted conversation's
    # messages cascade here), so the file never keeps text the user deleted.
    """CREATE TRIGGER attachments_collect AFTER DELETE ON message_attachments
    WHEN NOT EXISTS (SELECT 1 FROM message_attachments WHERE sha256 = old.sha256) BEGIN
        DELETE FROM attachments WHERE sha256 = old.sha256;
    END""",
)


def _schema_v2(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V2:
        conn.execute(statement)


# MIGRATIONS[n] brings a database from user_version n to n + 1. Append, never edit, so that a file
# written by any older release can be brought up to date one step at a time.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1, _schema_v2]
SCHEMA_VERSION = len(MIGRATIONS)

OUR_TABLES = {"conversations", "messages", "messages_fts", "attachments", "message_attachments"}
