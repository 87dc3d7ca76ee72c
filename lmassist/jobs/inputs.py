"""What a job works on: FILE arguments (files, folders walked recursively, globs), ``--files-from``
lists, filtered by ``--include``/``--exclude``; and each input read once, to tell text from the rest.

Paths are listed up front (a list of names: cheap, and the progress bar needs the count); contents
are read one file at a time, when the job reaches it. Every input has a relative path, its place in
a mirrored ``--out`` tree: below the folder or the glob's fixed part it came from, the file's name
for a file named alone, the path as listed (made relative) for ``--files-from``.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lmassist.errors import LMAssistError
from lmassist.textinput import MAX_INPUT_BYTES, decode_text, one_line_errors, read_stdin_bytes

_MAGIC = set("*?[")
PEEK_BYTES = 8192


@dataclass(frozen=True)
class JobInput:
    """One input: ``path`` to read (``-`` is stdin), ``rel`` its place in a mirrored tree."""

    path: str
    rel: str


@dataclass(frozen=True)
class Selection:
    """How FILE arguments become inputs."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip: Path | None = None  # a folder never walked into (the --out tree, when it sits inside an input)

    def wanted(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]

        def hit(pattern: str) -> bool:
            return fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(name, pattern)

        if self.include and not any(hit(p) for p in self.include):
            return False
        return not any(hit(p) for p in self.exclude)


def has_magic(arg: str) -> bool:
    return any(c in _MAGIC for c in arg)


def is_job(args: Sequence[str], files_from: str | None = None) -> bool:
    """True when the arguments name more than a list of files: a folder, a glob, or a path list."""
    return files_from is not None or any(arg != "-" and (os.path.isdir(arg) or (has_magic(arg) and not os.path.exists(arg)))
                                         for arg in args)


def _relative(path: str) -> str:
    """A listed path as a place in the output tree: relative to the working folder when it is below
    it, else with its root dropped; no ``..``, POSIX separators."""
    if os.path.isabs(path):
        below = os.path.relpath(path, os.getcwd())
        if not below.startswith(".."):
            path = below
    parts = [p for p in PurePosixPath(os.path.normpath(path).replace(os.sep, "/")).parts if p not in ("/", "..", ".")]
    return "/".join(parts) or os.path.basename(path)


def _walk(folder: str, sel: Selection) -> Iterator[JobInput]:
    """The files under ``folder``, sorted, hidden names (``.git``) and the skipped folder left out."""
    skip = os.path.realpath(sel.skip) if sel.skip is not None else None
    for root, dirs, files in os.walk(folder, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != skip)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if sel.wanted(rel):
                yield JobInput(path, rel)


def _glob_base(pattern: str) -> str:
    """The fixed folder part of a glob (``docs`` of ``docs/**/*.md``): relative paths start below it."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _expand_arg(arg: str, sel: Selection) -> Iterator[JobInput]:
    if arg == "-":
        yield JobInput("-", "stdin")
        return
    if os.path.isdir(arg):
        yield from _walk(arg, sel)
        return
    if os.path.lexists(arg) or not has_magic(arg):
        if not os.path.lexists(arg):
            raise LMAssistError(f"no such file or folder: {arg}")
        rel = os.path.basename(arg.rstrip("/")) or arg
        if sel.wanted(rel):
            yield JobInput(arg, rel)
        return
    base = _glob_base(arg)
    matches = sorted(glob.iglob(arg, recursive=True))
    if not matches:
        raise LMAssistError(f"no files match {arg}")
    for match in matches:
        if os.path.isdir(match):
            for inp in _walk(match, sel):
                yield JobInput(inp.path, os.path.relpath(inp.path, base).replace(os.sep, "/"))
        else:
            rel = os.path.relpath(match, base).replace(os.sep, "/")
            if sel.wanted(rel):
                yield JobInput(match, rel)


def listed_paths(files_from: str) -> Iterator[str]:
    """The paths of a ``--files-from`` list (``-``: stdin), one per line, blank lines skipped."""
    if files_from == "-":
        data = read_stdin_bytes()
        if data is None:
            raise LMAssistError("--files-from - reads paths from stdin, but nothing was piped in "
                                "(e.g. find notes -name '*.md' | lmassist summarize --files-from - --out summaries/)")
        lines: Iterable[str] = decode_text(data, "stdin").splitlines()
    else:
        try:
            with open(files_from, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise LMAssistError(f"no such file: {files_from} (--files-from)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise LMAssistError(f"cannot read the path list {files_from}: {getattr(e, 'strerror', None) or e}") from None
    for line in lines:
        if line.strip():
            yield line.rstrip("\r")


def collect(args: Sequence[str], files_from: str | None = None, sel: Selection | None = None) -> list[JobInput]:
    """Every input of a job, in order, each file once; a named path that does not exist, a glob
    that matches nothing, or nothing at all is a one-line error before any work."""
    sel = sel or Selection()
    if files_from == "-" and "-" in args:
        raise LMAssistError("stdin cannot be both the path list (--files-from -) and an input ('-')")
    found: list[JobInput] = []
    seen: set[str] = set()
    sources: Iterable[JobInput] = (inp for arg in args for inp in _expand_arg(arg, sel))
    if files_from is not None:
        listed = (JobInput(p, _relative(p)) for p in listed_paths(files_from))
        sources = _chain(sources, (i for i in listed if sel.wanted(i.rel)))
    for inp in sources:
        key = inp.path if inp.path == "-" else os.path.realpath(inp.path)
        if key not in seen:
            seen.add(key)
            found.append(inp)
    if not found:
        what = ", ".join(args) or files_from or "the arguments"
        filters = " after --include/--exclude" if sel.include or sel.exclude else ""
        raise LMAssistError(f"no input files in {what}{filters}")
    return found


def _chain(*parts: Iterable[JobInput]) -> Iterator[JobInput]:
    for part in parts:
        yield from part


@dataclass
class Loaded:
    """One input read: ``kind`` is ``"text"`` (``text`` set) or ``"other"`` (binary, not in the
    encoding, or empty: ``why`` says which); ``digest`` hashes the bytes either way."""

    kind: str
    digest: str
    size: int
    text: str = ""
    why: str = ""


def load(inp: JobInput, encoding: str | None = None) -> Loaded:
    """Read one input once: its hash, and its text when it is text. A file that cannot be read, or
    a text file over the size limit, is a one-line error (the job counts it as failed)."""
    if inp.path == "-":
        data = read_stdin_bytes()
        if data is None:
            raise LMAssistError("'-' means stdin, but nothing was piped in")
        return _classify(data, inp.path, encoding)
    with one_line_errors(inp.path):
        st = os.stat(inp.path)
        if not stat.S_ISREG(st.st_mode):
            raise LMAssistError(f"{inp.path} is not a regular file")
        with open(inp.path, "rb") as f:
            head = f.read(PEEK_BYTES)
            if b"\x00" in head:
                return Loaded("other", _hash_rest(f, head), st.st_size, why="binary")
            if st.st_size > MAX_INPUT_BYTES:
                raise LMAssistError(f"{inp.path} is {st.st_size / 2**20:.0f} MB; the limit is "
                                    f"{MAX_INPUT_BYTES // 2**20} MB")
            data = head + f.read(MAX_INPUT_BYTES + 1 - len(head))
    return _classify(data, inp.path, encoding)


def _hash_rest(f: object, head: bytes) -> str:
    h = hashlib.sha256(head)
    while chunk := f.read(1 << 20):  # type: ignore[attr-defined]
        h.update(chunk)
    return h.hexdigest()


def _classify(data: bytes, source: str, encoding: str | None) -> Loaded:
    digest = hashlib.sha256(data).hexdigest()
    if b"\x00" in data[:PEEK_BYTES]:
        return Loaded("other", digest, len(data), why="binary")
    try:
        text = data.decode(encoding) if encoding else data.decode("utf-8-sig")
    except (UnicodeDecodeError, LookupError):
        return Loaded("other", digest, len(data), why=f"not {encoding or 'UTF-8'} text")
    if not text.strip():
        return Loaded("other", digest, len(data), why="empty")
    return Loaded("text", digest, len(data), text=text)
