"""A persistent index of folders ("collections") in one SQLite file, searched with FTS5 and BM25.

Why this shape:

* One transaction per file (its row, its passages, their full-text entries), in WAL mode: Ctrl+C or
  SIGKILL in the middle of an update leaves every file either fully indexed or not at all, and the
  next ``update`` picks up where the last one stopped.
* ``update`` compares size and mtime first and reads only what changed, then the content hash, so
  touching a file (or checking one out again) costs a read, not a re-index.
* One FTS5 table per collection, so BM25's document frequencies are those of the folder searched
  (a word common in one folder is not made rare by another) and a query scans one folder only.
* The collection list is mirrored in a small JSON file beside the database, so that ``rebuild`` can
  start over from the folders even when the database itself is damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lmassist.config import atomic_write_text, paths, valid_name
from lmassist.docindex import schema, walk
from lmassist.docindex.passages import Block, blocks_for, pack
from lmassist.docindex.query import query_terms
from lmassist.docindex.records import Collection, Hit, UpdateSummary
from lmassist.docindex.selective import selective_terms
from lmassist.errors import LMAssistError

BUSY_TIMEOUT_MS = 5000
# BM25 weights of the columns (path, heading, body). On the folder-QA dev set no weighting changes
# hit@1/hit@3 (every heading there is "Normans — part N"; ``lmassist bench docs``);
# the heading counts double because in real notes it names the topic of the text under it.
WEIGHTS = (1.0, 2.0, 1.0)
# Passage size in approximate tokens: three fit the 1024-token context budget qa gives a small
# model; 300 won hit@1 on the tuning half of the dev set (200 tied on hit@3) and makes fewer rows
# for a query to rank.
MAX_TOKENS = 300
# Common words are dropped from queries (docindex.selective) from this many passages on: that is
# where they cost time, and in a small folder a passage matching only them still fills the top k.
SELECTIVE_FROM = 2000
_RACY_NS = 2_000_000_000  # a file written this close to its indexing may change again within one mtime tick

def default_path() -> Path:
    """Where the index lives: the data folder, beside the history."""
    return paths().data / "docs.db"


@dataclass(frozen=True)
class _Known:
    id: int
    sha256: str
    mtime_ns: int
    size: int


Progress = Callable[[str], None]


class DocIndex:
    """The index file. Use as a context manager or call :meth:`close`.

    ``max_tokens`` sizes the passages (about four characters a token): small enough that three
    fit a small model's context with the question, large enough to hold an answer with its setting.
    """

    def __init__(self, path: Path | str | None = None, max_tokens: int = MAX_TOKENS,
                 weights: Sequence[float] = WEIGHTS, selective: bool = True) -> None:
        schema.require_fts5()
        self.selective = selective  # drop a query's words found in most passages (docindex.selective)
        self._passage_count: tuple[object, int] = (None, 0)
        self.path = Path(path) if path is not None else default_path()
        self.max_tokens = max_tokens
        self.weights = tuple(float(w) for w in weights)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LMAssistError(f"cannot create the folder for the document index {self.path}: "
                                f"{e.strerror or e}") from None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # one connection, shared by the app's threads one call at a time
        try:
            with self._guard():
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._check_size()
                self._configure(self._conn)
        except BaseException:
            self.close()
            raise

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise LMAssistError(f"{self.path} is an SQLite database but not an lmassist document index; "
                                "it was left untouched")
        if version > schema.VERSION:
            raise LMAssistError(f"the document index {self.path} was written by a newer lmassist; upgrade it")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if version < schema.VERSION:
            with self._transaction():
                schema.create(conn)
        conn.execute("SELECT count(*) FROM collections").fetchone()

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> DocIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LMAssistError(f"the document index {self.path} is closed")
        return self._conn

    # -- collections -------------------------------------------------------------------------------

    def add(self, name: str, root: Path | str, include: Sequence[str] = (), exclude: Sequence[str] = (),
            progress: Progress | None = None) -> UpdateSummary:
        """Index the folder ``root`` as collection ``name`` (a new name) and return the summary."""
        folder = Path(root).expanduser().resolve()
        if not folder.is_dir():
            raise LMAssistError(f"{root} is not a folder")
        self.register(name, folder, include, exclude)
        return self.update(name, progress=progress)

    def register(self, name: str, root: Path | str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        """Record collection ``name`` without reading its folder (``update`` does that)."""
        valid_name(name, "collection name")
        with self._guard():
            if self._find(name) is not None:
                raise LMAssistError(f"a collection named {name!r} exists already; update it or remove it first")
            with self._transaction():
                cur = self.conn.execute("INSERT INTO collections(name, root, include, exclude) VALUES (?, ?, ?, ?)",
                                        (name, str(root), json.dumps(list(include)), json.dumps(list(exclude))))
                self._create_fts(cur.lastrowid)
        self._save_list()

    def list(self) -> list[Collection]:
        """Every collection, by name, with its file and passage counts."""
        with self._guard():
            rows = self.conn.execute(
                "SELECT c.id, c.name, c.root, c.include, c.exclude, count(f.id), coalesce(sum(f.chunks), 0), "
                "c.updated FROM collections c LEFT JOIN files f ON f.collection_id = c.id "
                "GROUP BY c.id ORDER BY c.name").fetchall()
        return [Collection(r[0], r[1], r[2], tuple(json.loads(r[3])), tuple(json.loads(r[4])), r[5], r[6], r[7])
                for r in rows]

    def remove(self, name: str) -> None:
        """Forget a collection (the folder itself is not touched)."""
        with self._guard():
            coll = self._get(name)
            with self._transaction():
                self.conn.execute(f"DROP TABLE IF EXISTS fts_{coll.id}")
                self.conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE collection_id = ?)",
                                  (coll.id,))
                self.conn.execute("DELETE FROM files WHERE collection_id = ?", (coll.id,))
                self.conn.execute("DELETE FROM collections WHERE id = ?", (coll.id,))
        self._save_list()

    def update(self, name: str, rebuild: bool = False, progress: Progress | None = None) -> UpdateSummary:
        """Bring collection ``name`` up to date with its folder: index new and changed files, drop
        deleted ones. ``rebuild`` re-reads and re-indexes every file."""
        started = time.monotonic()
        with self._guard():
            coll = self._get(name)
            if not Path(coll.root).is_dir():
                raise LMAssistError(f"the folder of collection {name!r}, {coll.root}, is gone; "
                                    f"remove the collection with `lmassist docs remove {name}` or restore the folder")
            summary = UpdateSummary(name)
            known = {r[0]: _Known(*r[1:]) for r in self.conn.execute(
                "SELECT path, id, sha256, mtime_ns, size FROM files WHERE collection_id = ?", (coll.id,))}
            walker = walk.Walk(Path(coll.root), coll.include, coll.exclude)
            seen: set[str] = set()
            for info in walker.files():
                if self._update_file(coll, info, known.get(info.rel), rebuild, summary):
                    seen.add(info.rel)
                if progress is not None:
                    progress(info.rel)
            if not Path(coll.root).is_dir():  # gone mid-walk (an unmounted disk): keep the index as it was
                raise LMAssistError(f"the folder of collection {name!r}, {coll.root}, disappeared during the update")
            for rel in sorted(set(known) - seen):
                with self._transaction():
                    self._delete_file(coll.id, known[rel].id, rel)
                summary.removed += 1
            summary.skipped.update(walker.skipped)
            self.conn.execute("UPDATE collections SET updated = ? WHERE id = ?", (time.time(), coll.id))
        summary.seconds = time.monotonic() - started
        return summary

    def collection(self, name: str) -> Collection:
        """The collection ``name``; a one-line error listing the others when there is none."""
        with self._guard():
            return self._get(name)

    def search(self, name: str, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages of collection ``name`` that BM25 ranks highest for the free-text
        ``query``, best first; ``[]`` when the query has no words or nothing matches."""
        with self._guard():
            coll_id = self._collection_id(name)
            table = f"fts_{coll_id}"
            words = query_terms(query)
            if self.selective and words and (passages := self._passages(coll_id)) >= SELECTIVE_FROM:
                words = selective_terms(self.conn, table, words, passages)
            expr = " OR ".join(f'"{w}"' for w in words)
            if not expr or k <= 0:
                return []
            rows = self.conn.execute(
                f"SELECT f.path, c.start_line, c.end_line, c.heading, c.text, m.score FROM "
                f"(SELECT rowid AS id, bm25({table}, ?, ?, ?) AS score FROM {table} WHERE {table} MATCH ? "
                f"ORDER BY score LIMIT ?) m JOIN chunks c ON c.id = m.id JOIN files f ON f.id = c.file_id "
                f"ORDER BY m.score", (*self.weights, expr, k)).fetchall()
            root = self.conn.execute("SELECT root FROM collections WHERE id = ?", (coll_id,)).fetchone()[0]
        return [Hit(name, root, *r[:5], -r[5]) for r in rows]

    def _collection_id(self, name: str) -> int:
        """The id of collection ``name`` (one indexed lookup: :meth:`list` counts every file)."""
        row = self.conn.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
        return row[0] if row else self._get(name).id  # _get raises the error that lists the names

    def _passages(self, coll_id: int) -> int:
        """How many passages the collection holds, remembered until another connection writes."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        key = (coll_id, version)  # this connection's own writes reset it (_transaction)
        if self._passage_count[0] != key:
            count = self.conn.execute("SELECT coalesce(sum(chunks), 0) FROM files WHERE collection_id = ?",
                                      (coll_id,)).fetchone()[0]
            self._passage_count = (key, count)
        return self._passage_count[1]

    def check(self) -> list[str]:
        """Problems found in the index (empty when sound): SQLite's and FTS5's own integrity checks,
        and files whose recorded passage count differs from the passages stored."""
        problems: list[str] = []
        with self._guard():
            problems += [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            for coll in self.list():
                try:
                    self.conn.execute(f"INSERT INTO fts_{coll.id}(fts_{coll.id}, rank) VALUES ('integrity-check', 1)")
                except sqlite3.DatabaseError as e:
                    problems.append(f"{coll.name}: full-text index: {e}")
            problems += [f"{path}: {want} passages recorded, {got} stored" for path, want, got in self.conn.execute(
                "SELECT f.path, f.chunks, (SELECT count(*) FROM chunks c WHERE c.file_id = f.id) AS n "
                "FROM files f WHERE f.chunks != n")]
        return problems

    # -- one file ----------------------------------------------------------------------------------

    def _update_file(self, coll: Collection, info: walk.FileInfo, old: _Known | None, rebuild: bool,
                     summary: UpdateSummary) -> bool:
        """Index one file if it changed; False when it was skipped (and so is not in the index)."""
        if old is not None and not rebuild and (old.mtime_ns, old.size) == (info.mtime_ns, info.size):
            summary.unchanged += 1
            return True
        try:
            data = walk.read_bytes(info.path)
            summary.read += 1
            sha = hashlib.sha256(data).hexdigest()
            mtime = 0 if time.time_ns() - info.mtime_ns < _RACY_NS else info.mtime_ns
            if old is not None and not rebuild and old.sha256 == sha:
                with self._transaction():
                    self.conn.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE id = ?", (mtime, len(data), old.id))
                summary.unchanged += 1
                return True
            passages = pack(blocks_for(info.rel, walk.to_text(data, info.rel)), self.max_tokens)
        except walk.Skipped as skip:
            summary.skipped[skip.reason] += 1
            return False
        with self._transaction():
            # The row as it is now, not as listed: another lmassist may have indexed it meanwhile.
            current = self.conn.execute("SELECT id FROM files WHERE collection_id = ? AND path = ?",
                                        (coll.id, info.rel)).fetchone()
            if current is not None:
                self._delete_file(coll.id, current[0], info.rel)
            self._insert_file(coll.id, info.rel, sha, mtime, len(data), passages)
        summary.chunks += len(passages)
        if old is None:
            summary.added += 1
        else:
            summary.updated += 1
        return True

    def _insert_file(self, coll_id: int, rel: str, sha: str, mtime: int, size: int, passages: list[Block]) -> None:
        conn = self.conn
        file_id = conn.execute(
            "INSERT INTO files(collection_id, path, sha256, mtime_ns, size, chunks) VALUES (?, ?, ?, ?, ?, ?)",
            (coll_id, rel, sha, mtime, size, len(passages))).lastrowid
        conn.executemany("INSERT INTO chunks(file_id, start_line, end_line, kind, heading, text) VALUES (?, ?, ?, ?, ?, ?)",
                         [(file_id, p.start_line, p.end_line, p.kind, p.heading, p.text) for p in passages])
        conn.execute(f"INSERT INTO fts_{coll_id}(rowid, path, heading, body) "
                     "SELECT id, ?, heading, text FROM chunks WHERE file_id = ?", (rel, file_id))

    def _delete_file(self, coll_id: int, file_id: int, rel: str) -> None:
        # A contentless FTS5 table forgets a row only when told its exact former values.
        conn = self.conn
        conn.execute(f"INSERT INTO fts_{coll_id}(fts_{coll_id}, rowid, path, heading, body) "
                     "SELECT 'delete', id, ?, heading, text FROM chunks WHERE file_id = ?", (rel, file_id))
        conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
        conn.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def _create_fts(self, coll_id: int) -> None:
        self.conn.execute(f"CREATE VIRTUAL TABLE fts_{coll_id} USING fts5(path, heading, body, content='', "
                          "tokenize='porter unicode61 remove_diacritics 2')")

    # -- helpers -----------------------------------------------------------------------------------

    def _find(self, name: str) -> Collection | None:
        return next((c for c in self.list() if c.name == name), None)

    def _get(self, name: str) -> Collection:
        coll = self._find(name)
        if coll is None:
            known = ", ".join(c.name for c in self.list()) or "none yet; add one with `lmassist docs add DIR`"
            raise LMAssistError(f"no document collection named {name!r} (collections: {known})")
        return coll

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._passage_count = (None, 0)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The lock held, and SQLite's errors as one line; damage points to ``--rebuild``."""
        try:
            with self._lock:
                yield
        except sqlite3.Error as e:
            raise schema.user_error(self.path, e) from None

    def _check_size(self) -> None:
        """A file shorter than its header says was truncated (a full disk, a bad copy): say so now
        rather than return partial results. Pages still in the WAL are not in the file yet."""
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        if self.path.stat().st_size < pages * page_size:
            raise schema.damaged(self.path, f"{self.path.stat().st_size} bytes, {pages * page_size} expected")

    def _save_list(self) -> None:
        """Mirror the collection list beside the database, for :func:`rebuild` to start from."""
        entries = [{"name": c.name, "root": c.root, "include": list(c.include), "exclude": list(c.exclude)}
                   for c in self.list()]
        atomic_write_text(list_path(self.path), json.dumps(entries, indent=1) + "\n")


def list_path(index_path: Path) -> Path:
    """The JSON file that mirrors the collection list of the index at ``index_path``."""
    return index_path.with_name(index_path.name + ".collections.json")


def rebuild(path: Path | str | None = None, progress: Progress | None = None,
            **options: object) -> list[UpdateSummary]:
    """Start the index over: the damaged file is moved aside (``.damaged``), a new one is made, and
    every collection is indexed again from its folder. The list comes from the mirror file."""
    index_path = Path(path) if path is not None else default_path()
    try:
        entries = json.loads(list_path(index_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        entries = []
    except (OSError, ValueError) as e:
        raise LMAssistError(f"cannot read the collection list {list_path(index_path)} ({e}); "
                            "add the folders again with `lmassist docs add DIR`") from None
    for suffix in ("", "-wal", "-shm"):
        damaged = Path(f"{index_path}{suffix}")
        if damaged.exists():
            os.replace(damaged, Path(f"{index_path}.damaged{suffix}"))
    summaries: list[UpdateSummary] = []
    with DocIndex(index_path, **options) as index:  # type: ignore[arg-type]
        for e in entries:
            index.register(e["name"], e["root"], e.get("include", ()), e.get("exclude", ()))
            if Path(e["root"]).is_dir():
                summaries.append(index.update(e["name"], progress=progress))
            else:  # kept, so that `docs list` still shows it and `docs update` says the folder is gone
                summaries.append(UpdateSummary(e["name"], skipped=Counter({"folder gone": 1})))
    return summaries
