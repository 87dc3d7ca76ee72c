"""Finished pieces of work kept on disk, so a run stopped by Ctrl+C, a crash or SIGKILL resumes
where it was instead of starting again.

A memo is an append-only JSON Lines file: each :meth:`Memo.put` writes one line and flushes it to
the kernel before returning, so a killed process loses at most the line it was writing. That torn
last line is ignored (and cut off) when the memo is opened again. Tasks see two methods, ``get`` and
``put`` (``values["memo"]`` in :meth:`lmassist.tasks.base.Task.run`); the job decides where the file
lives (:func:`memo_path`) and removes it once its output is complete (:meth:`Memo.remove`).

The same file format holds a folder job's manifest (:mod:`lmassist.jobs.manifest`): the last line
for a key wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmassist.errors import LMAssistError


def digest(*parts: Any) -> str:
    """A short stable hash of ``parts`` (strings, numbers, JSON-able dicts): memo and manifest keys."""
    h = hashlib.sha256()
    for part in parts:
        text = part if isinstance(part, str) else json.dumps(part, sort_keys=True, ensure_ascii=False, default=str)
        h.update(text.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def read_entries(path: Path) -> Iterator[tuple[str, str]]:
    """The (key, value) lines of a memo file in order; a line that does not parse (the torn last
    line of a killed writer) is skipped. A missing file has none."""
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            if not line.endswith("\n"):
                return  # torn: the writer died before the newline
            try:
                entry = json.loads(line)
                key, value = entry["k"], entry["v"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(key, str) and isinstance(value, str):
                yield key, value


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line with no newline, so the next put starts a line of its own."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            pos = size
            while pos > 0:  # back to the last newline, a block at a time
                step = min(65536, pos)
                f.seek(pos - step)
                block = f.read(step)
                nl = block.rfind(b"\n")
                if nl >= 0:
                    f.truncate(pos - step + nl + 1)
                    return
                pos -= step
            f.truncate(0)
    except FileNotFoundError:
        return


class Memo:
    """Finished work by key, on disk. ``get(key)`` is the value stored earlier (in this run or a
    killed one), or None; ``put(key, value)`` stores it durably at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._values: dict[str, str] = {}
        self._lines = 0  # lines in the file: more than the keys when a key was stored again
        for key, value in read_entries(self.path):
            self._values[key] = value
            self._lines += 1
        self._file: Any = None
        self.hits = 0
        self.puts = 0

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: str) -> str | None:
        value = self._values.get(key)
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: str, value: str) -> None:
        if self._values.get(key) == value:
            return
        if self._file is None:
            self._open()
        line = json.dumps({"k": key, "v": value}, ensure_ascii=False) + "\n"
        try:
            self._file.write(line)
            self._file.flush()  # in the kernel: survives SIGKILL of this process
        except OSError as e:
            raise LMAssistError(f"cannot save finished work to {self.path}: {e.strerror or e}") from None
        self._values[key] = value
        self._lines += 1
        self.puts += 1

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._values.items())

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _cut_torn_tail(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise LMAssistError(f"cannot save finished work to {self.path}: {e.strerror or e}") from None

    def sync(self) -> None:
        """Flush to the disk itself (a reboot, not only a killed process)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            try:
                self.sync()
            except OSError:
                pass
            self._file.close()
            self._file = None

    def compact(self) -> None:
        """Rewrite the file with one line per key when most of its lines are outdated (a manifest
        re-recorded run after run), through a temporary file: a crash keeps the old one."""
        if self._lines <= 2 * len(self._values) + 100:
            return
        self.close()
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for key, value in self._values.items():
                    f.write(json.dumps({"k": key, "v": value}, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._lines = len(self._values)
        except OSError:
            tmp.unlink(missing_ok=True)  # the long file is still whole: compaction can wait

    def remove(self) -> None:
        """The output is complete: the memo is not needed any more."""
        self.close()
        self.path.unlink(missing_ok=True)
        self._values.clear()

    def __enter__(self) -> Memo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def memo_path(folder: Path, input_hash: str, model: str, options: dict[str, Any]) -> Path:
    """The memo file of one input under ``folder``, per (input content, model, task options): a
    changed input, model or option starts a fresh memo rather than mixing results."""
    return Path(folder) / f"{digest(input_hash, model, options)}.jsonl"


def open_memo(folder: Path, input_hash: str, model: str, options: dict[str, Any]) -> Memo:
    """The memo of one input (see :func:`memo_path`), with what a stopped run left in it."""
    return Memo(memo_path(folder, input_hash, model, options))
