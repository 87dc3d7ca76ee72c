"""The index file's tables, and what SQLite's errors mean for the person who sees them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lmassist.errors import LMAssistError

VERSION = 1
REBUILD_HINT = "run `lmassist docs update --rebuild`"

TABLES = """
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, root TEXT NOT NULL,
    include TEXT NOT NULL DEFAULT '[]', exclude TEXT NOT NULL DEFAULT '[]', updated REAL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL REFERENCES collections(id),
    path TEXT NOT NULL, sha256 TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    chunks INTEGER NOT NULL, UNIQUE (collection_id, path));
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id),
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, kind TEXT NOT NULL, heading TEXT NOT NULL,
    text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
"""


def create(conn: sqlite3.Connection) -> None:
    """The tables and the schema version, inside the caller's transaction (``executescript``
    would commit first)."""
    for statement in (s.strip() for s in TABLES.split(";")):
        if statement:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {VERSION}")


def require_fts5() -> None:
    """A one-line error when this Python's SQLite was built without FTS5 (some minimal builds)."""
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.OperationalError:
        raise LMAssistError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5, which the document index needs; "
            "use a Python whose sqlite3 module has it (python.org and most distributions' builds do)"
        ) from None


def damaged(path: Path, detail: str) -> LMAssistError:
    return LMAssistError(f"the document index {path} is damaged ({detail}); {REBUILD_HINT}")


def user_error(path: Path, error: sqlite3.Error) -> LMAssistError:
    """One line for an SQLite error: busy, full or unwritable say so; anything else is damage,
    and damage points to ``--rebuild``."""
    message = str(error)
    if isinstance(error, sqlite3.OperationalError):
        if "locked" in message or "busy" in message:
            return LMAssistError(f"the document index {path} is busy (another lmassist is updating it); try again")
        if "disk is full" in message or "readonly" in message or "unable to open" in message:
            return LMAssistError(f"cannot write the document index {path}: {message}")
    if isinstance(error, sqlite3.IntegrityError):  # two lmassists adding the same name at once
        return LMAssistError(f"the document index {path} was changed by another lmassist at the same time "
                             f"({message}); try again")
    return damaged(path, message)
