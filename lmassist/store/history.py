"""The history's conversations and messages: what lmassist saves, reads, searches and exports."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from lmassist.errors import LMAssistError
from lmassist.store.attachments import (
    AttachmentLike,
    StoredAttachment,
    conversation_attachments,
    link_attachments,
)
from lmassist.store.database import HEX, Database, is_busy
from lmassist.store.export import check_format, export_text
from lmassist.store.records import (
    CONV_SELECT,
    MSG_SELECT,
    ROLES,
    STATUSES,
    Conversation,
    SearchHit,
    Status,
    StoredMessage,
    conversation_from_row,
    message_from_row,
    new_id,
    parse_time,
    short_title,
    to_json,
    utc_now,
)
from lmassist.store.search import SEARCH_SQL, fts_query


class Store(Database):
    """The conversation history: one SQLite connection, shared by threads under a lock.

    Open it with ``Store()`` (the user's history) or ``Store(path)``; use it as a context manager or
    call :meth:`close`. Any id argument may be a unique prefix of a conversation id.
    """

    # -- conversations ---------------------------------------------------------------------------

    def new_conversation(
        self, title: str | None = None, model: str | None = None, settings: dict[str, Any] | None = None
    ) -> Conversation:
        """Start a conversation. Without a title, the first user message will name it."""
        title = (title or "").strip() or None
        settings_json = json.dumps(settings or {}, ensure_ascii=False, sort_keys=True)

        def insert(conn: sqlite3.Connection) -> str:
            now = utc_now()
            cid = new_id()
            # Inside the write lock, so ids stay unique and in creation order across processes,
            # even within one millisecond or when the clock steps back.
            (last,) = conn.execute("SELECT MAX(id) FROM conversations").fetchone()
            if last is not None and len(last) == len(cid) and HEX.fullmatch(last) and last >= cid:
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
            return conversation_from_row(conn.execute(CONV_SELECT + " WHERE c.id = ?", (cid,)).fetchone())

        return self._read(read)

    def conversations(self, limit: int = 50, offset: int = 0) -> list[Conversation]:
        """Most recently updated first."""
        rows = self._read(
            lambda c: c.execute(
                CONV_SELECT + " ORDER BY c.updated DESC, c.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        )
        return [conversation_from_row(r) for r in rows]

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
        attachments: Sequence[AttachmentLike] = (),
    ) -> int:
        """Save a message now and return its id (keep it to :meth:`update_message` a streamed reply).

        The first user message names an untitled conversation; a message with a model makes that
        the conversation's model, so it reopens on the model last used. ``attachments`` are saved in
        the same transaction (each content once, by hash): a message is never saved without them.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        options_json, stats_json = to_json(options), to_json(stats)

        def insert(conn: sqlite3.Connection) -> int:
            full = self._resolve(conn, cid)
            now = utc_now()
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, model, options, stats, status, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (full, role, content, model, options_json, stats_json, status, now),
            )
            mid = int(cursor.lastrowid or 0)
            link_attachments(conn, mid, attachments, now)
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
            return mid

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
            changes["stats"] = to_json(stats)

        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (mid,)).fetchone()
            if row is None:
                raise LMAssistError(f"no message with id {mid} in the history")
            if changes:
                assignments = ", ".join(f"{name} = ?" for name in changes)
                conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), mid))
                conn.execute(
                    "UPDATE conversations SET updated = MAX(updated, ?) WHERE id = ?", (utc_now(), row[0])
                )

        self._write(update)

    def message(self, mid: int) -> StoredMessage:
        row = self._read(lambda c: c.execute(MSG_SELECT + " WHERE id = ?", (mid,)).fetchone())
        if row is None:
            raise LMAssistError(f"no message with id {mid} in the history")
        return message_from_row(row)

    def messages(self, cid: str) -> list[StoredMessage]:
        """The conversation's messages, oldest first."""

        def read(conn: sqlite3.Connection) -> list[Any]:
            full = self._resolve(conn, cid)
            return conn.execute(MSG_SELECT + " WHERE conversation_id = ? ORDER BY id", (full,)).fetchall()

        return [message_from_row(r) for r in self._read(read)]

    def attachments(self, cid: str) -> list[StoredAttachment]:
        """The conversation's attachments, in the order they were attached (each with its message)."""
        return self._read(lambda c: conversation_attachments(c, self._resolve(c, cid)))

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
        def read(conn: sqlite3.Connection) -> list[Any]:
            try:
                return conn.execute(SEARCH_SQL, (highlight[0], highlight[1], match, limit)).fetchall()
            except sqlite3.OperationalError as e:
                if is_busy(e):
                    raise
                raise LMAssistError(f"cannot search for {query!r}: {e}") from None

        return [
            SearchHit(
                conversation_id=r[0],
                conversation_title=r[1],
                message_id=r[2],
                role=r[3],
                created=parse_time(r[4]),
                snippet=r[5],
                score=r[6],
            )
            for r in self._read(read)
        ]

    # -- export ----------------------------------------------------------------------------------

    def export(self, cid: str, fmt: str = "md") -> str:
        """The conversation as a Markdown transcript (``"md"``) or as JSON with stats (``"json"``)."""
        check_format(fmt)

        def read(conn: sqlite3.Connection) -> tuple[Conversation, list[StoredMessage], list[StoredAttachment]]:
            # One snapshot, so the messages match the conversation even while another process writes.
            conn.execute("BEGIN")
            try:
                full = self._resolve(conn, cid)
                conv = conversation_from_row(conn.execute(CONV_SELECT + " WHERE c.id = ?", (full,)).fetchone())
                rows = conn.execute(MSG_SELECT + " WHERE conversation_id = ? ORDER BY id", (full,)).fetchall()
                attached = conversation_attachments(conn, full)
            finally:
                conn.execute("COMMIT")
            return conv, [message_from_row(r) for r in rows], attached

        conv, msgs, attached = self._read(read)
        return export_text(conv, msgs, fmt, attached)

