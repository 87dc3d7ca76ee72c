"""The text files under a folder, and reading each one without ever crashing on it.

A notes folder or a repository holds what it holds: build output, binaries, a file another program
is rewriting, one the user cannot read. None of them may stop an index update, and the user should
see why a file is missing from it, so every file left out is counted under a reason.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmassist.errors import LMAssistError
from lmassist.textinput import decode_text

# Folders no one means to index: version control, dependency trees, caches, virtual environments.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", "site-packages",
})
MAX_FILE_BYTES = 5 * 1024 * 1024  # past this a "note" is a data dump or a log; its passages bury the rest

# Reasons a file is left out, as ``docs update`` prints them.
BINARY = "binary"
NOT_UTF8 = "not UTF-8"
TOO_LARGE = "too large"
PERMISSION = "permission denied"
VANISHED = "deleted while reading"
NOT_REGULAR = "not a regular file"
UNREADABLE = "unreadable"
EXCLUDED = "excluded by pattern"
UNREADABLE_DIR = "unreadable folder"
IGNORED_DIR = "ignored folder"  # hidden, version control, dependencies, caches
HIDDEN = "hidden file"


class Skipped(Exception):
    """A file left out of the index, with the reason it is counted under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class FileInfo:
    """A file found under the root: its path relative to the root (``/``-separated), size, mtime."""

    path: Path
    rel: str
    size: int
    mtime_ns: int


@dataclass
class Walk:
    """What to look at under ``root``; ``skipped`` counts what was left out, by reason.

    ``include``/``exclude`` are glob patterns matched against the relative path and the file name
    (``*.md``, ``drafts/*``); an empty ``include`` means every file.
    """

    root: Path
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    max_bytes: int = MAX_FILE_BYTES
    skipped: Counter = field(default_factory=Counter)

    def files(self) -> Iterator[FileInfo]:
        """Regular files under the root, sorted within each folder, skipping hidden and ignored
        folders (symlinked folders are not followed: a link back up would loop)."""
        root = Path(self.root)
        if not root.is_dir():
            raise LMAssistError(f"{root} is not a folder (it was moved or deleted?)")
        yield from self._scan(root, "")

    def _scan(self, folder: Path, prefix: str) -> Iterator[FileInfo]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            self.skipped[UNREADABLE_DIR] += 1
            return
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                self.skipped[UNREADABLE] += 1
                continue
            if is_dir:
                if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                    self.skipped[IGNORED_DIR] += 1
                else:
                    yield from self._scan(Path(entry.path), rel + "/")
                continue
            if entry.name.startswith("."):
                self.skipped[HIDDEN] += 1
                continue
            info = self._check(entry, rel)
            if info is not None:
                yield info

    def _check(self, entry: os.DirEntry, rel: str) -> FileInfo | None:
        if not self._wanted(rel):
            self.skipped[EXCLUDED] += 1
            return None
        try:
            st = entry.stat()  # follows a link to a file: a linked note is still a note
        except FileNotFoundError:
            self.skipped[VANISHED] += 1
            return None
        except OSError:
            self.skipped[UNREADABLE] += 1
            return None
        if not stat.S_ISREG(st.st_mode):
            self.skipped[NOT_REGULAR] += 1
            return None
        if st.st_size > self.max_bytes:
            self.skipped[TOO_LARGE] += 1
            return None
        return FileInfo(Path(entry.path), rel, st.st_size, st.st_mtime_ns)

    def _wanted(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]

        def hit(patterns: Sequence[str]) -> bool:
            return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)

        return (not self.include or hit(self.include)) and not hit(self.exclude)


def read_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, or :class:`Skipped` with the reason.

    Opened without blocking and checked again after opening: the file may have been replaced by a
    named pipe (which would block forever) or grown past the limit since it was listed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise Skipped(VANISHED) from None
    except PermissionError:
        raise Skipped(PERMISSION) from None
    except OSError as e:
        raise Skipped(UNREADABLE, e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Skipped(NOT_REGULAR)
        if st.st_size > max_bytes:
            raise Skipped(TOO_LARGE)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise Skipped(UNREADABLE, e.strerror or str(e)) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise Skipped(TOO_LARGE)
    return data


def to_text(data: bytes, name: str) -> str:
    """Text from a file's bytes, decoded the way every lmassist input is (``textinput``), or
    :class:`Skipped` saying whether it looked binary or was another encoding."""
    try:
        text = decode_text(data, name)
    except LMAssistError as e:
        raise Skipped(BINARY if "binary" in str(e) else NOT_UTF8, str(e)) from None
    if "\x00" in text:  # decode_text looks for NUL bytes at the start only
        raise Skipped(BINARY, f"{name} has NUL bytes")
    return text
