"""The history's SQLite file: opening it safely, short transactions that retry while another
lmassist writes, and conversation ids given by a unique prefix."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lmassist.config import paths
from lmassist.errors import LMAssistError
from lmassist.store.schema import MIGRATIONS, OUR_TABLES, SCHEMA_VERSION, SQLITE_HEADER

BUSY_TIMEOUT_S = 10.0  # how long SQLite itself waits for another writer's lock
LOCK_RETRY_S = 30.0  # how long we keep retrying after that, before telling the user
HEX = re.compile(r"[0-9a-f]+")

_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="Database")


def is_busy(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


class Database:
    """One SQLite connection to the history, shared by threads under a lock (see :class:`Store`)."""

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
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
        foreign = {t for t in tables if not t.startswith(("sqlite_", "messages_fts_"))} - OUR_TABLES
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
        if isinstance(error, sqlite3.OperationalError) and is_busy(error):
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
                    if is_busy(e) and time.monotonic() < deadline:
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
        if not HEX.fullmatch(prefix):
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


    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

