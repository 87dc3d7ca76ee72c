"""Conversation history in SQLite, with full-text search.

The history is the one thing lmassist writes that users cannot get back, so this module is built to
not lose it: every write is its own short transaction, committed before the call returns (a message
saved before generation starts survives the process being killed); WAL mode plus a busy timeout and a
retry let two instances write at once; a file that is not our database is reported, never
overwritten. ``PRAGMA user_version`` records the schema so later releases can migrate old files.

Only the standard library is used (``sqlite3`` with FTS5), so opening the history costs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

from lmassist.generation import LMAssistError

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range locks instead
    fcntl = None  # type: ignore[assignment]

Status = Literal["complete", "interrupted", "error", "pending"]
STATUSES: tuple[str, ...] = ("complete", "interrupted", "error", "pending")
ROLES: tuple[str, ...] = ("system", "user", "assistant")

BUSY_TIMEOUT_S = 10.0  # how long SQLite itself waits for another writer's lock
LOCK_RETRY_S = 30.0  # how long we keep retrying after that, before telling the user
TITLE_WIDTH = 60
SQLITE_HEADER = b"SQLite format 3\x00"

_T = TypeVar("_T")


# -- records ---------------------------------------------------------------------------------------


@dataclass
class Conversation:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "settings": self.settings,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "message_count": self.message_count,
        }


@dataclass
class StoredMessage:
    id: int
    conversation_id: str
    role: str
    content: str
    model: str | None
    options: dict[str, Any] | None
    stats: dict[str, Any] | None
    status: str
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "role": self.role,
            "content": self.content,
            "model": self.model,
            "options": self.options,
            "stats": self.stats,
            "status": self.status,
            "created": self.created.isoformat(),
        }


@dataclass
class SearchHit:
    conversation_id: str
    conversation_title: str | None
    message_id: int
    role: str
    snippet: str  # the matching passage, matched words wrapped in the ``highlight`` markers
    created: datetime
    score: float = 0.0  # bm25: lower is a better match

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "conversation_title": self.conversation_title,
            "message_id": self.message_id,
            "role": self.role,
            "snippet": self.snippet,
            "created": self.created.isoformat(),
            "score": self.score,
        }


# -- schema ----------------------------------------------------------------------------------------


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

_OUR_TABLES = {"conversations", "messages", "messages_fts"}


# -- helpers ---------------------------------------------------------------------------------------


def _now() -> str:
    # Fixed-width ISO 8601 in UTC, so that text order is time order (ORDER BY, MAX()).
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _parse_time(value: str) -> datetime:
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


def _to_json(value: Any) -> str | None:
    """Options and stats arrive as dicts or as the generation module's dataclasses."""
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def fts_query(text: str) -> str:
    """Turn what a user typed into a safe FTS5 query: every word quoted, all of them required.

    Quoting means ``"``, ``(``, ``AND``, ``NEAR`` and ``-`` are searched as text, not parsed as
    syntax. A trailing ``*`` keeps its meaning (a prefix search). Returns ``""`` when nothing
    searchable is left (only punctuation).
    """
    terms = []
    for raw in text.split():
        word = raw.rstrip("*")
        if not any(ch.isalnum() for ch in word):
            continue
        quoted = '"' + word.replace('"', '""') + '"'
        terms.append(quoted + ("*" if word != raw else ""))
    return " ".join(terms)


_HEX = re.compile(r"[0-9a-f]+")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


# -- the store -------------------------------------------------------------------------------------


class Store:
    """The conversation history: one SQLite connection, shared by threads under a lock.

    Open it with ``Store()`` (the user's history) or ``Store(path)``; use it as a context manager or
    call :meth:`close`. Any id argument may be a unique prefix of a conversation id.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            from lmassist.config import paths

            path = paths().history_db
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._check_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LMAssistError(f"cannot create the folder for history database {self.path}: {e}") from None
        try:
            try:
                self._conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as e:
                raise self._error(e) from None
            self._retry(self._configure)
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _check_file(self) -> None:
        """Refuse anything at the path that is not a SQLite file, before SQLite could write to it."""
        if self.path.is_dir():
            raise LMAssistError(f"history database {self.path} is a directory")
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return
        except OSError as e:
            raise LMAssistError(f"cannot read history database {self.path}: {e.strerror or e}") from None
        if head and head != SQLITE_HEADER:
            raise LMAssistError(
                f"{self.path} is not an SQLite database; move it aside to start a new history"
            )

    def _configure(self) -> None:
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._check_not_foreign(conn)  # before WAL mode, which rewrites the file's header
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")

    def _check_not_foreign(self, conn: sqlite3.Connection) -> None:
        """Refuse another program's SQLite database rather than add our tables to it."""
        if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
            return
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        foreign = {t for t in tables if not t.startswith(("sqlite_", "messages_fts_"))} - _OUR_TABLES
        if foreign:
            raise LMAssistError(
                f"{self.path} is an SQLite database but not an lmassist history "
                f"(it has tables {', '.join(sorted(foreign))}); it was left untouched"
            )

    def _migrate(self) -> None:
        """Bring the file to :data:`SCHEMA_VERSION`, one step per transaction."""
        while True:
            version = self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:
                raise LMAssistError(
                    f"history database {self.path} was written by a newer lmassist "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade lmassist"
                )
            self._write(lambda c, expected=version: self._migrate_step(c, expected))

    def _migrate_step(self, conn: sqlite3.Connection, expected: int) -> None:
        # Another process may have migrated between our read and our lock: check again inside.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != expected:
            return
        self._check_not_foreign(conn)
        MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {version + 1}")

    # -- transactions ----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LMAssistError(f"the history database {self.path} is closed")
        return self._conn

    def _error(self, error: sqlite3.Error) -> LMAssistError:
        if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
            return LMAssistError(
                f"history database {self.path} stayed locked by another lmassist for "
                f"{LOCK_RETRY_S:.0f} s; try again"
            )
        message = str(error)
        if "not a database" in message or "malformed" in message:
            return LMAssistError(
                f"history database {self.path} is damaged ({message}); move it aside to start a new history"
            )
        return LMAssistError(f"cannot use history database {self.path}: {message}")

    def _retry(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` under the lock, retrying while another process holds the database's lock.

        SQLite's busy timeout already waits; this covers the cases where SQLite gives up at once
        (a lock upgrade, a WAL being recovered) and converts what is left into a one-line error.
        """
        with self._lock:
            deadline = time.monotonic() + LOCK_RETRY_S
            delay = 0.005
            while True:
                try:
                    return fn()
                except sqlite3.OperationalError as e:
                    if _is_busy(e) and time.monotonic() < deadline:
                        time.sleep(delay)
                        delay = min(delay * 2, 0.25)
                        continue
                    raise self._error(e) from None
                except (sqlite3.DatabaseError, sqlite3.InterfaceError) as e:
                    if isinstance(e, sqlite3.IntegrityError):
                        raise
                    raise self._error(e) from None

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """One short write transaction, committed before returning.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so the busy timeout can wait for it;
        a deferred transaction that upgrades later can fail at once without waiting.
        """

        def attempt() -> _T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._retry(attempt)

    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        return self._retry(lambda: fn(self._connection()))

    # -- ids -------------------------------------------------------------------------------------

    def _resolve(self, conn: sqlite3.Connection, cid_or_prefix: str) -> str:
        prefix = str(cid_or_prefix).strip().lower()
        if not prefix:
            raise LMAssistError("no conversation id given")
        if not _HEX.fullmatch(prefix):
            raise LMAssistError(f"no conversation with id {cid_or_prefix!r} (ids are hex, like 019ab3c4d5e6f7a8)")
        rows = conn.execute(
            "SELECT id FROM conversations WHERE id >= ? AND id < ? ORDER BY id LIMIT 3",
            (prefix, prefix + "g"),  # 'g' sorts after every hex digit: the range of ids with this prefix
        ).fetchall()
        if not rows:
            raise LMAssistError(f"no conversation with id {cid_or_prefix!r}; see `lmassist history list`")
        if len(rows) > 1:
            more = "" if len(rows) == 2 else ", ..."
            raise LMAssistError(
                f"conversation id {cid_or_prefix!r} is ambiguous: it starts {rows[0][0]}, {rows[1][0]}{more}; "
                "type more of it"
            )
        return rows[0][0]

    def resolve(self, cid_or_prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``cid_or_prefix``."""
        return self._read(lambda c: self._resolve(c, cid_or_prefix))

    # -- conversations ---------------------------------------------------------------------------

    _CONV_SELECT = (
        "SELECT c.id, c.title, c.model, c.settings, c.created, c.updated, "
        "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c"
    )

    @staticmethod
    def _conversation(row: Sequence[Any]) -> Conversation:
        return Conversation(
            id=row[0],
            title=row[1],
            model=row[2],
            settings=json.loads(row[3] or "{}"),
            created=_parse_time(row[4]),
            updated=_parse_time(row[5]),
            message_count=row[6],
        )

    def new_conversation(
        self, title: str | None = None, model: str | None = None, settings: dict[str, Any] | None = None
    ) -> Conversation:
        """Start a conversation. Without a title, the first user message will name it."""
        title = (title or "").strip() or None
        settings_json = json.dumps(settings or {}, ensure_ascii=False, sort_keys=True)

        def insert(conn: sqlite3.Connection) -> str:
            now = _now()
            cid = new_id()
            # Inside the write lock, so ids stay unique and in creation order across processes,
            # even within one millisecond or when the clock steps back.
            (last,) = conn.execute("SELECT MAX(id) FROM conversations").fetchone()
            if last is not None and len(last) == len(cid) and _HEX.fullmatch(last) and last >= cid:
                cid = f"{int(last, 16) + 1:016x}"
            conn.execute(
                "INSERT INTO conversations (id, title, model, settings, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, title, model, settings_json, now, now),
            )
            return cid

        return self.get(self._write(insert))

    def get(self, cid_or_prefix: str) -> Conversation:
        def read(conn: sqlite3.Connection) -> Conversation:
            cid = self._resolve(conn, cid_or_prefix)
            return self._conversation(conn.execute(self._CONV_SELECT + " WHERE c.id = ?", (cid,)).fetchone())

        return self._read(read)

    def conversations(self, limit: int = 50, offset: int = 0) -> list[Conversation]:
        """Most recently updated first."""
        rows = self._read(
            lambda c: c.execute(
                self._CONV_SELECT + " ORDER BY c.updated DESC, c.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        )
        return [self._conversation(r) for r in rows]

    def latest(self) -> Conversation | None:
        found = self.conversations(limit=1)
        return found[0] if found else None

    def rename(self, cid: str, title: str) -> None:
        title = " ".join(str(title).split())
        if not title:
            raise LMAssistError("a conversation title cannot be empty")

        def update(conn: sqlite3.Connection) -> None:
            full = self._resolve(conn, cid)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, full))

        self._write(update)

    def set_settings(self, cid: str, settings: dict[str, Any]) -> None:
        """Replace the conversation's settings (system prompt, options...) as a whole."""
        settings_json = json.dumps(settings, ensure_ascii=False, sort_keys=True)

        def update(conn: sqlite3.Connection) -> None:
            full = self._resolve(conn, cid)
            conn.execute("UPDATE conversations SET settings = ? WHERE id = ?", (settings_json, full))

        self._write(update)

    def delete(self, cid: str) -> None:
        """Delete a conversation and its messages (the search index follows through triggers)."""

        def remove(conn: sqlite3.Connection) -> None:
            full = self._resolve(conn, cid)
            conn.execute("DELETE FROM conversations WHERE id = ?", (full,))

        self._write(remove)

    # -- messages --------------------------------------------------------------------------------

    @staticmethod
    def _message(row: Sequence[Any]) -> StoredMessage:
        return StoredMessage(
            id=row[0],
            conversation_id=row[1],
            role=row[2],
            content=row[3],
            model=row[4],
            options=_from_json(row[5]),
            stats=_from_json(row[6]),
            status=row[7],
            created=_parse_time(row[8]),
        )

    _MSG_SELECT = "SELECT id, conversation_id, role, content, model, options, stats, status, created FROM messages"

    def add_message(
        self,
        cid: str,
        role: str,
        content: str,
        *,
        model: str | None = None,
        options: Any = None,
        stats: Any = None,
        status: Status | str = "complete",
    ) -> int:
        """Save a message now and return its id (keep it to :meth:`update_message` a streamed reply).

        The first user message names an untitled conversation; a message with a model makes that
        the conversation's model, so it reopens on the model last used.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        options_json, stats_json = _to_json(options), _to_json(stats)

        def insert(conn: sqlite3.Connection) -> int:
            full = self._resolve(conn, cid)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, model, options, stats, status, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (full, role, content, model, options_json, stats_json, status, now),
            )
            # MAX(): a writer that took its timestamp earlier must not move ``updated`` back.
            conn.execute(
                "UPDATE conversations SET updated = MAX(updated, ?), model = COALESCE(?, model) WHERE id = ?",
                (now, model, full),
            )
            if role == "user":
                conn.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title IS NULL",
                    (short_title(content), full),
                )
            return int(cursor.lastrowid or 0)

        return self._write(insert)

    def update_message(
        self,
        mid: int,
        *,
        content: str | None = None,
        status: Status | str | None = None,
        stats: Any = None,
    ) -> None:
        """Change a saved message: the text of a reply as it streams, then its status and stats."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = content
        if status is not None:
            changes["status"] = status
        if stats is not None:
            changes["stats"] = _to_json(stats)

        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (mid,)).fetchone()
            if row is None:
                raise LMAssistError(f"no message with id {mid} in the history")
            if changes:
                assignments = ", ".join(f"{name} = ?" for name in changes)
                conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), mid))
                conn.execute(
                    "UPDATE conversations SET updated = MAX(updated, ?) WHERE id = ?", (_now(), row[0])
                )

        self._write(update)

    def message(self, mid: int) -> StoredMessage:
        row = self._read(lambda c: c.execute(self._MSG_SELECT + " WHERE id = ?", (mid,)).fetchone())
        if row is None:
            raise LMAssistError(f"no message with id {mid} in the history")
        return self._message(row)

    def messages(self, cid: str) -> list[StoredMessage]:
        """The conversation's messages, oldest first."""

        def read(conn: sqlite3.Connection) -> list[Any]:
            full = self._resolve(conn, cid)
            return conn.execute(self._MSG_SELECT + " WHERE conversation_id = ? ORDER BY id", (full,)).fetchall()

        return [self._message(r) for r in self._read(read)]

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        limit: int = 20,
        *,
        highlight: tuple[str, str] = ("**", "**"),
        raw: bool = False,
    ) -> list[SearchHit]:
        """Full-text search over every message, best matches first.

        What the user typed is quoted word by word (see :func:`fts_query`), so punctuation and
        words like ``AND`` are plain text; ``raw=True`` passes FTS5 query syntax through for those
        who want it, and a query that SQLite still rejects becomes an :class:`LMAssistError`.
        """
        match = query.strip() if raw else fts_query(query)
        if not match:
            return []
        sql = (
            "SELECT m.conversation_id, c.title, m.id, m.role, m.created, "
            "snippet(messages_fts, 0, ?, ?, '…', 16), bm25(messages_fts) AS score "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? ORDER BY score, m.id DESC LIMIT ?"
        )

        def read(conn: sqlite3.Connection) -> list[Any]:
            try:
                return conn.execute(sql, (highlight[0], highlight[1], match, limit)).fetchall()
            except sqlite3.OperationalError as e:
                if _is_busy(e):
                    raise
                raise LMAssistError(f"cannot search for {query!r}: {e}") from None

        return [
            SearchHit(
                conversation_id=r[0],
                conversation_title=r[1],
                message_id=r[2],
                role=r[3],
                created=_parse_time(r[4]),
                snippet=r[5],
                score=r[6],
            )
            for r in self._read(read)
        ]

    # -- export ----------------------------------------------------------------------------------

    def export(self, cid: str, fmt: str = "md") -> str:
        """The conversation as a Markdown transcript (``"md"``) or as JSON with stats (``"json"``)."""
        if fmt not in ("md", "json"):
            raise LMAssistError(f"unknown export format {fmt!r}; use md or json")

        def read(conn: sqlite3.Connection) -> tuple[Conversation, list[StoredMessage]]:
            # One snapshot, so the messages match the conversation even while another process writes.
            conn.execute("BEGIN")
            try:
                full = self._resolve(conn, cid)
                conv = self._conversation(conn.execute(self._CONV_SELECT + " WHERE c.id = ?", (full,)).fetchone())
                rows = conn.execute(self._MSG_SELECT + " WHERE conversation_id = ? ORDER BY id", (full,)).fetchall()
            finally:
                conn.execute("COMMIT")
            return conv, [self._message(r) for r in rows]

        conv, msgs = self._read(read)
        if fmt == "json":
            data = {"format": "lmassist.conversation", "schema": SCHEMA_VERSION, **conv.to_dict()}
            data["messages"] = [m.to_dict() for m in msgs]
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return markdown_transcript(conv, msgs)

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


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


_Row = TypeVar("_Row")


def drop_unanswered(items: Sequence[_Row], keep_last: bool = False) -> list[_Row]:
    """Leave out user messages that got no reply (the next message is the user's again).

    Such a message is a turn that failed or was killed before the model said anything; shown to
    the model it makes two user turns in a row, and a long one pushes everything before it out of
    the context. It stays in the history; it is only not sent again. ``keep_last`` keeps a final
    user message (the one being asked now).
    """
    kept = []
    for i, m in enumerate(items):
        role = getattr(m, "role", "")
        nxt = items[i + 1] if i + 1 < len(items) else None
        if role == "user" and (nxt is None and not keep_last or nxt is not None and getattr(nxt, "role", "") == "user"):
            continue
        kept.append(m)
    return kept


def conversation_context(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The rows a model is shown when a conversation goes on (``ask -c``, ``chat -c``).

    The history keeps everything; the context keeps what the conversation became: a regenerated
    reply or an edited message replaces the row it names (and what followed it), slash tasks and
    turns that failed (status ``error``, or a reply with no text) are left out, and so are user
    messages that never got a reply.
    """
    rows: list[StoredMessage] = []
    for m in messages:
        replaces = (m.options or {}).get("replaces")
        if replaces is not None:
            for i, r in enumerate(rows):
                if r.id == replaces:
                    del rows[i:]
                    break
        rows.append(m)
    rows = [
        m for m in rows
        if not (m.options or {}).get("task") and m.status != "error"
        and (m.role != "assistant" or m.content.strip())
    ]
    return drop_unanswered(rows)


class TurnLockCancelled(LMAssistError):
    """Waiting for another process's turn in the same conversation was given up (a signal, Esc)."""


@contextmanager
def turn_lock(
    store: Store,
    cid: str,
    *,
    cancelled: Callable[[], bool] = lambda: False,
    waiting: Callable[[], None] | None = None,
    poll_s: float = 0.1,
) -> Iterator[None]:
    """Hold conversation ``cid`` for one turn: from reading its context to saving the reply.

    Two processes continuing one conversation at once would each read the same context and save
    their questions, then their answers, interleaved. With this lock the second waits (``waiting``
    is called once, so it can say so) and then reads a context that has the first one's answer.
    A lock file per conversation next to the database, locked with ``flock``: the kernel releases
    it when its process dies, whatever killed it. ``cancelled`` is polled while waiting.
    """
    folder = store.path.parent / f"{store.path.name}.turns"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LMAssistError(f"cannot create {folder} for conversation locks: {e.strerror or e}") from None
    path = folder / f"{store.resolve(cid)}.lock"
    said = False
    while True:
        fd = _try_lock(path)
        if fd is not None:
            break
        if cancelled():
            raise TurnLockCancelled("stopped while waiting for another lmassist's reply in this conversation")
        if not said and waiting is not None:
            waiting()
            said = True
        time.sleep(poll_s)
    try:
        yield
    finally:
        _unlock(path, fd)


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock on ``path``, or None when another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise LMAssistError(f"cannot open conversation lock {path}: {e.strerror or e}") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # Windows
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return None
        if fcntl is None:
            return fd
        # The holder before us unlinks the file as it lets go; if that happened after we opened
        # it, our lock is on a file nobody else will see: open the path again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    try:
        if fcntl is not None:
            try:
                path.unlink()  # while still holding it, so no lock file is left behind
            except OSError:
                pass
        else:
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)


@contextmanager
def open_store(path: Path | str | None = None) -> Iterator[Store]:
    """``with open_store() as store:`` for callers that only need the history briefly."""
    store = Store(path)
    try:
        yield store
    finally:
        store.close()
