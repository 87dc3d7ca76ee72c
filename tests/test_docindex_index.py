"""The folder walk and the persistent index: real files in tmp_path, real SQLite, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmassist.docindex import schema, walk
from lmassist.docindex.index import DocIndex, list_path, rebuild
from lmassist.docindex.query import match_expression
from lmassist.docindex.ranking import rank_texts, score_texts
from lmassist.docindex.selective import selective_terms, stems
from lmassist.errors import LMAssistError

OLD = 1_600_000_000  # an mtime well in the past: files the test just wrote are not "racy"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    os.utime(path, (OLD, OLD))
    return path


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    write(root / "meeting.md", "# Budget meeting\n\nCouncillor David Okafor will bring the budget.\n\n"
                               "## Actions\n\n- Helen Park books the room\n  for Thursday.\n")
    write(root / "recipes" / "bread.txt", "Mix flour and water.\n\nBake at 220 degrees for forty minutes.\n")
    write(root / "src" / "tool.py", "import os\n\n\ndef frobnicate(x):\n    return x * 2\n")
    write(root / "page.html", "<h1>Garden</h1>\n<p>Tomatoes need sun.</p>\n")
    return root


@pytest.fixture
def index(tmp_path: Path):
    with DocIndex(tmp_path / "data" / "docs.db") as ix:
        yield ix


# -- walk ----------------------------------------------------------------------------------------


def test_walk_skips_binary_huge_non_utf8_and_ignored_folders_with_reasons(tmp_path: Path):
    root = tmp_path / "r"
    write(root / "ok.md", "fine\n")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(root / "latin1.txt", "caf\xe9 au lait".encode("latin-1"))
    write(root / "late-nul.txt", b"text " * 4000 + b"\x00")
    write(root / "big.log", "x" * 40000)
    write(root / ".hidden", "secret")
    write(root / ".git" / "config", "[core]")
    write(root / "node_modules" / "m" / "index.js", "x")
    write(root / "skip-me.tmp", "x")
    w = walk.Walk(root, exclude=["*.tmp"], max_bytes=30000)
    found = {}
    for info in w.files():
        try:
            found[info.rel] = walk.to_text(walk.read_bytes(info.path, w.max_bytes), info.rel)
        except walk.Skipped as s:
            w.skipped[s.reason] += 1
    assert found == {"ok.md": "fine\n"}
    assert w.skipped == {walk.BINARY: 2, walk.NOT_UTF8: 1, walk.TOO_LARGE: 1, walk.HIDDEN: 1,
                         walk.IGNORED_DIR: 2, walk.EXCLUDED: 1}


def test_walk_include_patterns(tmp_path: Path):
    root = tmp_path / "r"
    for name in ("a.md", "b.txt", "sub/c.md"):
        write(root / name, "x\n")
    assert [f.rel for f in walk.Walk(root, include=["*.md"]).files()] == ["a.md", "sub/c.md"]


def test_read_bytes_vanished_fifo_and_permission(tmp_path: Path):
    with pytest.raises(walk.Skipped) as gone:
        walk.read_bytes(tmp_path / "missing.txt")
    assert gone.value.reason == walk.VANISHED
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(walk.Skipped) as pipe:
        walk.read_bytes(fifo)  # must not block waiting for a writer
    assert pipe.value.reason == walk.NOT_REGULAR
    if os.geteuid() != 0:
        locked = write(tmp_path / "locked.txt", "x")
        locked.chmod(0)
        with pytest.raises(walk.Skipped) as perm:
            walk.read_bytes(locked)
        assert perm.value.reason == walk.PERMISSION


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_update_counts_unreadable_files_and_folders(tmp_path: Path, index: DocIndex):
    root = tmp_path / "r"
    write(root / "ok.md", "readable\n")
    write(root / "locked.md", "no\n").chmod(0)
    write(root / "closed" / "inner.md", "no\n")
    (root / "closed").chmod(0)
    try:
        summary = index.add("r", root)
    finally:
        (root / "closed").chmod(0o755)
    assert summary.added == 1
    assert summary.skipped == {walk.PERMISSION: 1, walk.UNREADABLE_DIR: 1}
    assert "2 skipped (permission denied 1, unreadable folder 1)" in summary.line()


def test_permission_errors_are_counted_even_as_root(tmp_path: Path, index: DocIndex, monkeypatch):
    """The same path as chmod 000, for runs as root (which reads any file): the OS's own errors."""
    root = tmp_path / "r"
    write(root / "ok.md", "readable\n")
    write(root / "locked.md", "no\n")
    write(root / "closed" / "inner.md", "no\n")
    real_open, real_scandir = os.open, os.scandir

    def fake_open(path, *args, **kwargs):
        if Path(path).name == "locked.md":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    def fake_scandir(path):
        if Path(path).name == "closed":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(walk.os, "open", fake_open)
    monkeypatch.setattr(walk.os, "scandir", fake_scandir)
    summary = index.add("r", root)
    assert (summary.added, summary.skipped) == (1, {walk.PERMISSION: 1, walk.UNREADABLE_DIR: 1})


def test_file_deleted_between_listing_and_reading_is_skipped(tmp_path: Path, index: DocIndex, monkeypatch):
    root = tmp_path / "r"
    write(root / "a.md", "alpha\n")
    write(root / "b.md", "beta\n")
    real = walk.read_bytes

    def delete_first(path, *args):
        if path.name == "a.md":
            path.unlink()
        return real(path, *args)

    monkeypatch.setattr(walk, "read_bytes", delete_first)
    summary = index.add("r", root)
    assert (summary.added, summary.skipped) == (1, {walk.VANISHED: 1})


# -- index ---------------------------------------------------------------------------------------


def test_add_search_cites_path_and_line(notes: Path, index: DocIndex):
    summary = index.add("notes", notes)
    assert (summary.added, summary.read, summary.skipped) == (4, 4, {})
    hits = index.search("notes", "Who brings the budget?", k=3)
    assert hits[0].citation == "meeting.md:1" and "Okafor" in hits[0].text
    assert hits[0].heading == "Budget meeting" and hits[0].score > 0
    assert index.search("notes", "frobnicate")[0].citation == "src/tool.py:4"
    assert index.search("notes", "tomatoes sun")[0].path == "page.html"
    assert index.search("notes", "baking")[0].path == "recipes/bread.txt"  # porter: baking ~ bake
    [coll] = index.list()
    assert (coll.name, coll.root, coll.files) == ("notes", str(notes.resolve()), 4)


def test_update_reads_only_changed_files_and_drops_deleted(notes: Path, index: DocIndex):
    index.add("notes", notes)
    assert index.update("notes").read == 0
    write(notes / "recipes" / "bread.txt", "Mix rye flour and water.\n")
    (notes / "page.html").unlink()
    os.utime(notes / "src" / "tool.py", (OLD + 5, OLD + 5))  # touched, content the same
    write(notes / "new.md", "A new note about kayaks.\n")
    summary = index.update("notes")
    assert (summary.added, summary.updated, summary.removed, summary.read) == (1, 1, 1, 3)
    assert summary.unchanged == 2
    assert index.search("notes", "tomatoes") == []
    assert index.search("notes", "rye")[0].path == "recipes/bread.txt"
    assert index.search("notes", "kayaks")[0].path == "new.md"
    assert index.update("notes").read == 0
    assert index.check() == []


def test_a_file_written_just_before_indexing_is_read_again_next_time(tmp_path: Path, index: DocIndex):
    """Racy mtimes: a same-size edit within the mtime tick of the first read must not be missed."""
    root = tmp_path / "r"
    root.mkdir()
    (root / "fresh.md").write_text("version one\n")
    index.add("r", root)
    (root / "fresh.md").write_text("version two\n")  # same size, maybe the same mtime
    summary = index.update("r")
    assert summary.read == 1 and index.search("r", "two")[0].path == "fresh.md"


def test_two_updates_at_once_do_not_collide(tmp_path: Path, notes: Path):
    db = tmp_path / "docs.db"
    with DocIndex(db) as first, DocIndex(db) as second:
        first.register("notes", notes.resolve())
        ran = []

        def other_process_updates(rel: str) -> None:
            if not ran:
                ran.append(second.update("notes"))

        summary = first.update("notes", progress=other_process_updates)
        assert ran[0].added + ran[0].unchanged == 4 and summary.added == 4
        assert first.check() == [] and first.list()[0].files == 4


def test_a_file_that_becomes_unreadable_leaves_the_index(notes: Path, index: DocIndex):
    index.add("notes", notes)
    write(notes / "meeting.md", b"\x00\x01binary now")
    summary = index.update("notes")
    assert summary.removed == 1 and summary.skipped == {walk.BINARY: 1}
    assert index.search("notes", "Okafor") == []


def test_rebuild_one_collection_and_remove(notes: Path, index: DocIndex):
    index.add("notes", notes)
    assert index.update("notes", rebuild=True).updated == 4
    index.add("other", notes)
    index.remove("notes")
    assert [c.name for c in index.list()] == ["other"]
    with pytest.raises(LMAssistError, match="no document collection named 'notes'"):
        index.search("notes", "x")
    assert index.check() == []


def test_bad_collection_names_and_folders(tmp_path: Path, notes: Path, index: DocIndex):
    with pytest.raises(LMAssistError, match="invalid collection name"):
        index.add("../x", notes)
    with pytest.raises(LMAssistError, match="is not a folder"):
        index.add("x", tmp_path / "nope")
    index.add("notes", notes)
    with pytest.raises(LMAssistError, match="exists already"):
        index.add("notes", notes)
    moved = tmp_path / "moved"
    notes.rename(moved)
    with pytest.raises(LMAssistError, match="is gone"):
        index.update("notes")


@pytest.mark.parametrize("query", [
    '"unbalanced', 'AND', 'OR OR', 'budget AND NOT', 'NEAR(budget okafor, 2)', 'budg*', '*', '-budget',
    '(budget', 'budget)', 'col:budget', '^budget', 'a"b"c', "'", "", "   ", "!!!", "_", "__init__",
    "NOT", "{budget}", "budget + okafor", "ﬁle naïve 数据", "x" * 5000, " ".join(["word"] * 500),
])
def test_free_text_queries_never_raise(notes: Path, index: DocIndex, query: str):
    index.add("notes", notes)
    hits = index.search("notes", query)
    assert isinstance(hits, list)


def test_match_expression_quotes_words_and_drops_operators():
    assert match_expression('Who brings "the" budget (NEAR Okafor)?') == '"brings" OR "budget" OR "okafor"'
    assert match_expression("and or not") == '"and" OR "or" OR "not"'
    assert match_expression("*-^()") == ""


def test_no_fts5_is_one_line(monkeypatch):
    class NoFts:
        def execute(self, sql):
            raise sqlite3.OperationalError("no such module: fts5")

    monkeypatch.setattr(schema.sqlite3, "connect", lambda *a, **k: NoFts())
    with pytest.raises(LMAssistError, match="has no FTS5"):
        schema.require_fts5()


# -- damage and kills ----------------------------------------------------------------------------


def test_truncated_index_is_one_line_error_then_rebuild_works(tmp_path: Path, notes: Path):
    db = tmp_path / "docs.db"
    for i in range(40):
        write(notes / f"bulk-{i}.md", f"# Note {i}\n\n" + "Some filler words about gardens. " * 200)
    with DocIndex(db) as ix:
        ix.add("notes", notes)
    assert list_path(db).exists()
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(LMAssistError) as err:
        with DocIndex(db) as ix:
            ix.search("notes", "Okafor")
    message = str(err.value)
    assert "\n" not in message and "damaged" in message and "lmassist docs update --rebuild" in message
    [summary] = rebuild(db)
    assert summary.added == 44
    with DocIndex(db) as ix:
        assert ix.search("notes", "Okafor")[0].path == "meeting.md"
        assert ix.check() == []
    assert Path(f"{db}.damaged").exists()


def test_another_programs_database_is_left_untouched(tmp_path: Path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(LMAssistError, match="not an lmassist document index"):
        DocIndex(db)
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [("accounts",)]


def test_index_under_a_file_is_one_line_error(tmp_path: Path):
    write(tmp_path / "file", "x")
    with pytest.raises(LMAssistError, match="cannot create the folder"):
        DocIndex(tmp_path / "file" / "docs.db")


def test_garbage_index_file_is_one_line_error(tmp_path: Path):
    db = tmp_path / "docs.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LMAssistError, match="damaged .* --rebuild"):
        DocIndex(db)


def test_ctrl_c_mid_update_keeps_whole_files_and_update_finishes(tmp_path: Path, index: DocIndex):
    root = tmp_path / "r"
    for i in range(30):
        write(root / f"n{i:02}.md", f"# N{i}\n\nnote number {i} mentions zebra{i}\n")
    seen = []

    def interrupt(rel: str) -> None:
        seen.append(rel)
        if len(seen) == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index.add("r", root, progress=interrupt)
    assert index.check() == [] and index.list()[0].files == 10
    summary = index.update("r")
    assert (summary.added, summary.read, index.list()[0].files) == (20, 20, 30)


def test_rebuild_keeps_a_collection_whose_folder_is_gone(tmp_path: Path, notes: Path):
    db = tmp_path / "docs.db"
    gone = tmp_path / "gone"
    write(gone / "a.md", "x\n")
    with DocIndex(db) as ix:
        ix.add("notes", notes)
        ix.add("gone", gone)
    (gone / "a.md").unlink()
    gone.rmdir()
    db.write_bytes(b"\0" * 4096)
    summaries = rebuild(db)
    assert [(s.name, s.added) for s in summaries] == [("gone", 0), ("notes", 4)]
    with DocIndex(db) as ix:
        assert [c.name for c in ix.list()] == ["gone", "notes"]
        with pytest.raises(LMAssistError, match="is gone"):
            ix.update("gone")


def _generate(root: Path, files: int) -> None:
    words = "river garden budget council bread harbour lantern meadow quarry violin".split()
    for i in range(files):
        body = "\n\n".join(" ".join(words[(i + j + k) % 10] for k in range(60)) + "." for j in range(12))
        write(root / f"d{i // 100}" / f"note-{i}.md", f"# Note {i}\n\n{body}\n")


def test_sigkill_during_indexing_leaves_a_consistent_index_that_update_completes(tmp_path: Path):
    root, db = tmp_path / "big", tmp_path / "docs.db"
    _generate(root, 1500)
    script = ("import sys\nfrom lmassist.docindex.index import DocIndex\n"
              "DocIndex(sys.argv[1]).add('big', sys.argv[2])\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(db), str(root)])
    try:
        deadline = time.monotonic() + 120
        indexed = 0
        while indexed < 50 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            indexed = _count_files(db)
        assert child.poll() is None, "indexing finished before it could be killed; generate more files"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with DocIndex(db) as ix:
        assert ix.check() == []
        [coll] = ix.list()
        assert 0 < coll.files < 1500
        summary = ix.update("big")
        assert summary.added == 1500 - coll.files and summary.read == summary.added
        assert ix.list()[0].files == 1500 and ix.check() == []
        assert ix.search("big", "lantern quarry")


def _count_files(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


# -- in-memory ranking (qa's passages and sentences, attachments that do not fit) ------------------


def test_rank_texts_best_first_with_stems_and_accents():
    texts = ["Helen Park chairs the meeting.", "Lunch is at noon.", "Councillor David Okafor will bring the budget.",
             "The café opens at nine."]
    assert rank_texts(texts, "Who brings the budget?", 2) == [2, 0]  # "brings" meets "bring"; the rest in order
    assert rank_texts(texts, "When does the cafe open?", 1) == [3]  # accents folded, "open" meets "opens"


def test_rank_texts_a_word_in_most_texts_still_ranks_the_ones_holding_it_first():
    """rank-bm25 gave every text zero here (a term in half the texts or more has IDF 0 there)."""
    texts = ["The ferry leaves at noon.", "The bus leaves at one.", "Tickets are sold at the pier."]
    assert rank_texts(texts, "What leaves?", 3)[:2] == [0, 1]
    scores = score_texts(texts, "What leaves?")
    assert scores[0] > 0 and scores[1] > 0 and scores[2] == 0


def test_rank_texts_odd_queries_and_edges():
    texts = ["alpha beta", "gamma"]
    assert rank_texts(texts, 'NEAR("alpha" OR) * -:^', 2) == [0, 1]  # FTS5 syntax is searched as words
    assert rank_texts(texts, "?!", 2) == [0, 1]  # no words: the original order
    assert rank_texts([], "alpha", 3) == [] and rank_texts(texts, "alpha", 0) == []
    assert rank_texts(texts, "gamma", 5) == [1, 0]


def test_selective_terms_drop_words_in_most_passages_but_never_all():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE fts_1 USING fts5(body, tokenize='porter unicode61 remove_diacritics 2')")
    rows = [f"the king said hello {i}" for i in range(20)] + ["the king brings the budget"]
    conn.executemany("INSERT INTO fts_1(rowid, body) VALUES (?, ?)", enumerate(rows))
    assert stems(conn, ["brings", "Café", "the"]) == ["bring", "cafe", "the"]
    assert selective_terms(conn, "fts_1", ["king", "brings", "budget"], len(rows)) == ["brings", "budget"]
    assert selective_terms(conn, "fts_1", ["king", "said"], len(rows)) == ["said"]  # all common: the rarest
    assert selective_terms(conn, "fts_1", ["zeppelin"], len(rows)) == []


def test_search_on_a_big_collection_still_finds_the_rare_word(tmp_path: Path, monkeypatch):
    import lmassist.docindex.index as index_module

    monkeypatch.setattr(index_module, "SELECTIVE_FROM", 10)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"n{i}.md").write_text(f"# Note {i}\n\nThe king said hello to the court.\n")
    (folder / "budget.md").write_text("# Budget\n\nThe king brings the budget to court.\n")
    with DocIndex(tmp_path / "docs.db") as idx:
        idx.add("many", folder)
        assert [h.path for h in idx.search("many", "Which king brings the budget to court?", 3)][:1] == ["budget.md"]
        assert idx.search("many", "king court", 3)  # only common words: the rarest still searched
