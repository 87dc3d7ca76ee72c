"""The conversation history: real SQLite files in tmp_path, real processes for the concurrency cases."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lmassist.conversation import conversation_context
from lmassist.generation import GenerationOptions, GenerationStats, LMAssistError
from lmassist.store import (
    SCHEMA_VERSION,
    Store,
    TurnLockCancelled,
    fts_query,
    short_title,
    turn_lock,
)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMASSIST_HOME", str(tmp_path / "home"))
    for name in ("LMASSIST_DATA_DIR", "LMASSIST_CONFIG_DIR", "LMASSIST_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "h.db") as s:
        yield s


# -- workers for the multi-process tests: module level so that spawned children can import them --


def _write_many(path: str, cid: str, tag: str, count: int, start: Any) -> None:
    start.wait(30)
    with Store(path) as s:
        for i in range(count):
            s.add_message(cid, "user", f"{tag} message number {i}")


def _write_then_hang(path: str, ready: Any) -> None:
    s = Store(path)
    cid = s.new_conversation(title="doomed").id
    s.add_message(cid, "user", "saved before generation starts")
    mid = s.add_message(cid, "assistant", "partial rep", model="m", status="pending")
    s.update_message(mid, content="partial reply so far")
    ready.set()
    threading.Event().wait(60)  # killed long before this returns


def _unique_prefix(ids: list[str], target: str) -> str:
    """The shortest prefix of ``target`` that no other id shares."""
    for n in range(1, len(target) + 1):
        if sum(i.startswith(target[:n]) for i in ids) == 1:
            return target[:n]
    raise AssertionError("ids are not unique")


# -- basics ----------------------------------------------------------------------------------------


def test_default_path_follows_lmassist_home(tmp_path: Path) -> None:
    with Store() as s:
        s.new_conversation(title="t")
        assert s.path == tmp_path / "home" / "data" / "history.db"
    assert (tmp_path / "home" / "data" / "history.db").is_file()


def test_pragmas_and_schema_version(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    with Store(store.path) as again:  # reopening an up-to-date file migrates nothing
        assert again.conversations() == []


def test_round_trip(store: Store) -> None:
    conv = store.new_conversation(model="llamacpp:smol", settings={"system": "be brief"})
    assert 12 <= len(conv.id) <= 16 and conv.title is None and conv.message_count == 0
    store.add_message(conv.id, "system", "be brief")
    store.add_message(conv.id, "user", "What is the capital of France?")
    mid = store.add_message(
        conv.id,
        "assistant",
        "Paris.",
        model="llamacpp:smol",
        options=GenerationOptions(temperature=0.0, stop=("\n",)),
        stats=GenerationStats(prompt_tokens=12, generated_tokens=3, time_to_first_token_s=0.1, total_s=0.3),
    )
    got = store.get(conv.id)
    assert got.title == "What is the capital of France?"
    assert got.settings == {"system": "be brief"} and got.model == "llamacpp:smol"
    assert got.message_count == 3 and got.updated >= conv.updated
    msgs = store.messages(conv.id)
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    last = msgs[-1]
    assert last.id == mid and last.content == "Paris." and last.status == "complete"
    assert last.options["temperature"] == 0.0 and last.options["stop"] == ["\n"]
    assert last.stats["generated_tokens"] == 3 and "tokens_per_s" in last.stats
    assert store.message(mid) == last

    store.set_settings(conv.id, {"system": "be verbose"})
    store.rename(conv.id, "  Geography   quiz ")
    got = store.get(conv.id)
    assert got.settings == {"system": "be verbose"} and got.title == "Geography quiz"
    with pytest.raises(LMAssistError):
        store.rename(conv.id, "   ")


def test_streamed_reply_is_updated_in_place(store: Store) -> None:
    cid = store.new_conversation().id
    mid = store.add_message(cid, "assistant", "", model="m", status="pending")
    store.update_message(mid, content="Once upon")
    store.update_message(mid, content="Once upon a time", status="interrupted", stats={"generated_tokens": 4})
    m = store.message(mid)
    assert (m.content, m.status, m.stats) == ("Once upon a time", "interrupted", {"generated_tokens": 4})
    with pytest.raises(LMAssistError, match="no message"):
        store.update_message(99999, status="complete")
    with pytest.raises(ValueError):
        store.update_message(mid, status="finished")
    with pytest.raises(ValueError):
        store.add_message(cid, "robot", "hi")


def test_title_from_first_user_message_is_shortened(store: Store) -> None:
    long = "Please   explain\nhow the transformer attention mechanism works in detail, with examples and maths"
    cid = store.new_conversation().id
    store.add_message(cid, "user", long)
    store.add_message(cid, "user", "a second question must not rename it")
    title = store.get(cid).title
    assert title is not None and title.startswith("Please explain how the transformer")
    assert len(title) <= 61 and title.endswith("…") and "\n" not in title
    assert short_title("short") == "short" and short_title("  \n ") is None
    titled = store.new_conversation(title="Mine").id
    store.add_message(titled, "user", "hello")
    assert store.get(titled).title == "Mine"


def test_conversations_most_recent_first_and_latest(store: Store) -> None:
    assert store.latest() is None
    a = store.new_conversation(title="a").id
    b = store.new_conversation(title="b").id
    c = store.new_conversation(title="c").id
    store.add_message(a, "user", "bump a")
    assert [x.id for x in store.conversations()] == [a, c, b]
    assert [x.id for x in store.conversations(limit=1, offset=1)] == [c]
    latest = store.latest()
    assert latest is not None and latest.id == a


def test_ids_sort_by_creation_and_accept_unique_prefixes(store: Store) -> None:
    ids = [store.new_conversation(title=str(i)).id for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    target = ids[-1]
    unique = _unique_prefix(ids, target)
    n = len(unique) - 1
    assert n > 0 and store.get(unique).id == target
    assert store.get(unique.upper()).id == target
    assert [m.id for m in store.messages(unique)] == []
    with pytest.raises(LMAssistError, match="ambiguous"):
        store.get(target[:n])
    with pytest.raises(LMAssistError, match="no conversation"):
        store.get("fff")
    with pytest.raises(LMAssistError, match="no conversation"):
        store.get("not-hex%")
    with pytest.raises(LMAssistError, match="no conversation"):
        store.add_message("fff", "user", "lost?")


def test_ambiguous_prefix_message_is_one_line(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as s:
        conn = s._conn
        assert conn is not None
        for cid in ("abc0000000000001", "abc0000000000002", "abd0000000000001"):
            conn.execute(
                "INSERT INTO conversations (id, created, updated) VALUES (?, '2025-01-01', '2025-01-01')", (cid,)
            )
        with pytest.raises(LMAssistError) as info:
            s.get("ab")
        assert "ambiguous" in str(info.value) and "\n" not in str(info.value)
        assert s.get("abd").id == "abd0000000000001"


# -- search ----------------------------------------------------------------------------------------


def test_search_finds_words_with_snippets(store: Store) -> None:
    a = store.new_conversation(title="pets").id
    store.add_message(a, "user", "My dogs keep running around the garden all day long.")
    b = store.new_conversation(title="food").id
    store.add_message(b, "user", "A recipe for lemon cake please")
    hits = store.search("run")  # stemmed: "running" matches
    assert [h.conversation_id for h in hits] == [a]
    assert hits[0].conversation_title == "pets" and hits[0].role == "user"
    assert "**running**" in hits[0].snippet
    assert store.search("lemon cake")[0].conversation_id == b
    assert store.search("lemon dogs") == []  # every word must appear
    assert store.search("gard*")[0].conversation_id == a
    assert store.search("DOGS", highlight=("<", ">"))[0].snippet.count("<dogs>") == 1


def test_search_follows_updates(store: Store) -> None:
    cid = store.new_conversation().id
    mid = store.add_message(cid, "assistant", "", status="pending")
    assert store.search("zebra") == []
    store.update_message(mid, content="The zebra crossed")
    assert [h.message_id for h in store.search("zebra")] == [mid]
    store.update_message(mid, content="The giraffe crossed", status="complete")
    assert store.search("zebra") == []
    assert [h.message_id for h in store.search("giraffe")] == [mid]
    store.update_message(mid, status="complete")  # a status change leaves the index alone
    assert [h.message_id for h in store.search("giraffe")] == [mid]


def test_delete_cascades_and_leaves_the_index(store: Store) -> None:
    keep = store.new_conversation(title="keep").id
    store.add_message(keep, "user", "kiwi fruit")
    gone = store.new_conversation(title="gone").id
    for text in ("kiwi birds", "penguin colony", "penguin facts"):
        store.add_message(gone, "user", text)
    store.delete(_unique_prefix([keep, gone], gone))
    with pytest.raises(LMAssistError):
        store.get(gone)
    assert [h.conversation_id for h in store.search("kiwi")] == [keep]
    assert store.search("penguin") == []
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (gone,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'penguin'").fetchone()[0] == 0
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "query",
    ['"', "*", "AND", "(", ")", 'say "hi', "cats AND", "OR dogs", "(unclosed", "NEAR(a b", "-", "^x", "a:b",
     "col:umn", "'", "'; DROP TABLE messages; --", "🙂", "", "   "],
)
def test_search_never_chokes_on_fts_syntax(store: Store, query: str) -> None:
    cid = store.new_conversation().id
    store.add_message(cid, "user", 'cats AND dogs (say "hi") NEAR the col:umn a:b 🙂')
    hits = store.search(query)
    assert isinstance(hits, list)
    assert store.messages(cid)[0].content.startswith("cats")


def test_search_treats_operators_as_words(store: Store) -> None:
    cid = store.new_conversation().id
    store.add_message(cid, "user", "cats AND dogs (say \"hi\")")
    store.add_message(cid, "user", "only cats here")
    assert len(store.search("AND")) == 1
    assert len(store.search('"hi')) == 1
    assert len(store.search("cats")) == 2
    assert fts_query('a "b" c*') == '"a" """b""" "c"*'


def test_raw_search_with_invalid_syntax_is_a_user_error(store: Store) -> None:
    store.add_message(store.new_conversation().id, "user", "alpha beta")
    assert len(store.search("alpha OR gamma", raw=True)) == 1
    with pytest.raises(LMAssistError, match="cannot search"):
        store.search('"unbalanced', raw=True)


# -- export ----------------------------------------------------------------------------------------


def test_export_markdown(store: Store) -> None:
    cid = store.new_conversation(model="hf:gpt2").id
    store.add_message(cid, "user", "Write a haiku about rain")
    store.add_message(cid, "assistant", "Soft rain on the roof", model="hf:gpt2", status="interrupted")
    store.add_message(cid, "assistant", "Second try, complete.", model="hf:gpt2")
    md = store.export(cid[:-2], "md")
    assert md.startswith("# Write a haiku about rain\n")
    assert cid in md and "hf:gpt2" in md
    assert "## User\n\nWrite a haiku about rain" in md
    assert "## Assistant · `hf:gpt2` (interrupted)\n\nSoft rain on the roof" in md
    assert "## Assistant · `hf:gpt2`\n\nSecond try, complete." in md
    assert md.index("Soft rain") < md.index("Second try") and md.count("(interrupted)") == 1


def test_export_json(store: Store) -> None:
    cid = store.new_conversation(title="T", settings={"temperature": 0.2}).id
    store.add_message(cid, "user", "hi")
    stats = GenerationStats(prompt_tokens=5, generated_tokens=2, time_to_first_token_s=0.05, total_s=0.2,
                            stop_reason="cancelled")
    store.add_message(cid, "assistant", "hel", model="m", status="interrupted", stats=stats,
                      options=GenerationOptions(seed=7))
    data = json.loads(store.export(cid, "json"))
    assert data["id"] == cid and data["title"] == "T" and data["settings"] == {"temperature": 0.2}
    assert data["schema"] == SCHEMA_VERSION and data["message_count"] == 2
    user, reply = data["messages"]
    assert user == {**user, "role": "user", "content": "hi", "status": "complete", "stats": None}
    assert reply["status"] == "interrupted" and reply["model"] == "m"
    assert reply["stats"]["stop_reason"] == "cancelled" and reply["stats"]["prompt_tokens"] == 5
    assert reply["options"]["seed"] == 7
    with pytest.raises(LMAssistError, match="format"):
        store.export(cid, "html")


# -- damage and concurrency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 20, b"\x00\xff" * 3000, b"SQLite format 3\x00" + b"\xab" * 4080],
    ids=["text", "binary", "bad-header"],
)
def test_corrupt_file_is_reported_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(content)
    with pytest.raises(LMAssistError) as info:
        Store(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert path.read_bytes() == content
    assert not (tmp_path / "history.db-wal").exists() or (tmp_path / "history.db-wal").stat().st_size == 0


def test_foreign_sqlite_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(LMAssistError, match="not an lmassist history"):
        Store(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(LMAssistError, match="newer lmassist"):
        Store(path)


def test_directory_at_the_path_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(LMAssistError, match="directory"):
        Store(tmp_path / "dir.db")


def test_threads_share_one_store(store: Store) -> None:
    cid = store.new_conversation().id
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                mid = store.add_message(cid, "assistant", "", status="pending")
                store.update_message(mid, content=f"thread {n} reply {i}", status="complete")
                store.search("reply")
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = store.messages(cid)
    assert len(msgs) == 100 and all(m.status == "complete" for m in msgs)


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Store(path) as s:
        cid = s.new_conversation(title="shared").id
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_many, args=(str(path), cid, tag, 200, start)) for tag in ("alpha", "beta")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(path) as s:
        msgs = s.messages(cid)
        assert len(msgs) == 400
        for tag in ("alpha", "beta"):
            mine = [m.content for m in msgs if m.content.startswith(tag)]
            assert mine == [f"{tag} message number {i}" for i in range(200)]
        assert len(s.search("alpha", limit=500)) == 200
        assert s.get(cid).message_count == 400


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_message_survives_the_writer_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_write_then_hang, args=(str(path), ready))
    proc.start()
    try:
        assert ready.wait(60), "the writer never got going"
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    with Store(path) as s:
        conv = s.latest()
        assert conv is not None and conv.title == "doomed"
        msgs = s.messages(conv.id)
        assert [(m.role, m.content, m.status) for m in msgs] == [
            ("user", "saved before generation starts", "complete"),
            ("assistant", "partial reply so far", "pending"),
        ]
        assert len(s.search("partial")) == 1


# -- what a continued conversation shows the model, and one turn at a time ----------------------


def test_context_leaves_out_failed_unanswered_replaced_and_task_rows(store: Store) -> None:
    cid = store.new_conversation().id
    store.add_message(cid, "system", "Be brief.")
    store.add_message(cid, "user", "My name is Ada.")
    old = store.add_message(cid, "assistant", "Hello Ada.")
    store.add_message(cid, "assistant", "Hi, Ada!", options={"replaces": old})  # regenerated
    store.add_message(cid, "user", "lorem " * 2000, status="error")  # too long: failed, marked
    store.add_message(cid, "user", "Are you there?")  # killed before any reply
    store.add_message(cid, "assistant", "", status="error")
    store.add_message(cid, "user", "/summarize notes.md", options={"task": "summarize"})
    store.add_message(cid, "assistant", "A summary.", options={"task": "summarize"})
    store.add_message(cid, "user", "What is my name?")
    store.add_message(cid, "assistant", "Ada.", status="interrupted")  # a partial reply is still a reply
    store.add_message(cid, "user", "Still there?")  # the last question, never answered
    context = conversation_context(store.messages(cid))
    assert [(m.role, m.content) for m in context] == [
        ("system", "Be brief."), ("user", "My name is Ada."), ("assistant", "Hi, Ada!"),
        ("user", "What is my name?"), ("assistant", "Ada."),
    ]
    assert len(store.messages(cid)) == 12  # the history itself keeps every row


def _hold_turn(path: str, cid: str, held: Any) -> None:
    with Store(path) as s, turn_lock(s, cid):
        held.set()
        time.sleep(60)  # until killed


def test_turn_lock_makes_a_second_process_wait_and_is_freed_when_its_holder_dies(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as s:
        cid = s.new_conversation().id
        ctx = multiprocessing.get_context("spawn")
        held = ctx.Event()
        holder = ctx.Process(target=_hold_turn, args=(str(path), cid, held))
        holder.start()
        try:
            assert held.wait(60)
            waited: list[bool] = []
            stop = threading.Event()
            with pytest.raises(TurnLockCancelled):
                threading.Timer(0.5, stop.set).start()
                with turn_lock(s, cid, cancelled=stop.is_set, waiting=lambda: waited.append(True)):
                    pass
            assert waited == [True]
            os.kill(holder.pid, signal.SIGKILL)  # the kernel drops a dead holder's lock
            holder.join(30)
            with turn_lock(s, cid, cancelled=lambda: True):  # free at once now: never polls "cancelled"
                pass
        finally:
            if holder.is_alive():
                holder.kill()
            holder.join(30)
        other = s.new_conversation().id
        with turn_lock(s, cid), turn_lock(s, other):  # conversations are held independently
            pass
        assert not list((tmp_path / "h.db.turns").iterdir())
