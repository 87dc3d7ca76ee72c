"""Attachments in the history: real SQLite files, each content stored once by hash, linked to the
message that attached it, upgraded from the old schema, gone with the last conversation using it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lmassist.attachments import Attachment
from lmassist.store import SCHEMA_VERSION, Store
from lmassist.store.schema import MIGRATIONS

NOTES = Attachment.from_text("notes.md", "# Budget\n\nCouncillor David Okafor will bring the budget.\n")
TODO = Attachment.from_text("todo.txt", "buy milk\nfix the ``` fence\n")


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_same_file_in_ten_chats_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Store(db) as store:
        cids = []
        for i in range(10):
            cid = store.new_conversation().id
            store.add_message(cid, "user", f"question {i}", attachments=[NOTES])
            cids.append(cid)
        assert [a.name for a in store.attachments(cids[3])] == ["notes.md"]
        assert store.attachments(cids[3])[0].text == NOTES.text
    assert _count(db, "attachments") == 1
    assert _count(db, "message_attachments") == 10


def test_links_keep_order_and_message(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        cid = store.new_conversation().id
        first = store.add_message(cid, "user", "one", attachments=[TODO, NOTES])
        store.add_message(cid, "assistant", "ok")
        second = store.add_message(cid, "user", "two", attachments=[NOTES])
        found = store.attachments(cid)
    assert [(a.message_id, a.position, a.name) for a in found] == [
        (first, 0, "todo.txt"), (first, 1, "notes.md"), (second, 0, "notes.md")]
    assert found[0].sha256 == TODO.sha256 and found[0].size == TODO.size


def test_a_message_is_never_saved_without_its_attachments(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    forged = Attachment("x.md", "text", "0" * 64, 4, 1)
    with Store(db) as store:
        cid = store.new_conversation().id
        with pytest.raises(ValueError, match="sha256"):
            store.add_message(cid, "user", "question", attachments=[NOTES, forged])
        assert store.messages(cid) == []
    assert _count(db, "attachments") == 0


def test_deleting_conversations_collects_unreferenced_contents(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Store(db) as store:
        a = store.new_conversation().id
        b = store.new_conversation().id
        store.add_message(a, "user", "q", attachments=[NOTES, TODO])
        store.add_message(b, "user", "q", attachments=[NOTES])
        store.delete(a)
        assert _count(db, "attachments") == 1  # NOTES is still used by b
        assert [x.name for x in store.attachments(b)] == ["notes.md"]
        store.delete(b)
    assert _count(db, "attachments") == 0
    assert _count(db, "message_attachments") == 0


def test_a_history_written_by_the_old_schema_upgrades(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)  # the schema every release before attachments wrote
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO conversations VALUES ('0123456789abcdef', 'old chat', 'm', '{}', "
                 "'2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00')")
    conn.execute("INSERT INTO messages (conversation_id, role, content, created) VALUES "
                 "('0123456789abcdef', 'user', 'kept across the upgrade', '2026-01-01T00:00:00.000000+00:00')")
    conn.execute("COMMIT")
    conn.close()
    assert SCHEMA_VERSION >= 2
    with Store(db) as store:
        assert [m.content for m in store.messages("0123")] == ["kept across the upgrade"]
        store.add_message("0123", "user", "now with a file", attachments=[NOTES])
        assert [a.name for a in store.attachments("0123")] == ["notes.md"]
        assert store.search("upgrade")[0].conversation_id == "0123456789abcdef"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_export_carries_names_hashes_and_text(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        cid = store.new_conversation().id
        store.add_message(cid, "user", "who brings it?", attachments=[NOTES, TODO])
        store.add_message(cid, "assistant", "David Okafor.")
        store.add_message(cid, "user", "again", attachments=[NOTES])
        md = store.export(cid, "md")
        data = json.loads(store.export(cid, "json"))
    assert "*Attached: `notes.md`" in md and NOTES.sha256 in md
    assert "Councillor David Okafor will bring the budget." in md
    assert "````\nbuy milk\nfix the ``` fence\n````" in md  # a fence the file cannot close
    assert md.count("### notes.md") == 1  # the content once, however often attached
    assert data["messages"][0]["attachments"] == [
        {"name": "notes.md", "sha256": NOTES.sha256, "size": NOTES.size},
        {"name": "todo.txt", "sha256": TODO.sha256, "size": TODO.size},
    ]
    assert data["messages"][1]["attachments"] == []
    assert [(c["names"], c["text"]) for c in data["attachments"]] == [(["notes.md"], NOTES.text), (["todo.txt"], TODO.text)]
