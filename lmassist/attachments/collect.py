"""What the user typed after ``-f`` (files, folders, globs, ``-``) turned into attachments.

A file named on its own must be readable text, or the command stops with one line naming it: the
user asked for that file. Inside a folder or a glob, files that are binary, not UTF-8, empty or too
large are skipped and counted by reason (a notes folder holds what it holds), and only a folder or
glob with nothing readable at all is an error. Everything is read before anything is saved or any
model is loaded, so a bad ``-f`` costs nothing.
"""

from __future__ import annotations

import glob
import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

from lmassist.attachments.record import Attachment, human_size
from lmassist.docindex.walk import MAX_FILE_BYTES, Skipped, Walk, read_bytes, to_text
from lmassist.errors import LMAssistError
from lmassist.textinput import MAX_INPUT_BYTES, read_file_bytes, read_stdin_bytes

MAX_ATTACHMENT_BYTES = MAX_FILE_BYTES  # one file; past this it is a data dump: `lmassist docs add` it
MAX_TOTAL_BYTES = MAX_INPUT_BYTES  # everything attached at once
EMPTY = "empty"
STDIN_NAME = "stdin"


class Collected(list[Attachment]):
    """The attachments, in the order given, and ``skipped``: files left out of folders and globs,
    counted by reason (``{"binary": 2, "not UTF-8": 1}``)."""

    def __init__(self, items: Iterable[Attachment] = (), skipped: Counter | None = None) -> None:
        super().__init__(items)
        self.skipped: Counter = skipped if skipped is not None else Counter()

    def skipped_line(self) -> str | None:
        """``skipped 3 files: 2 binary, 1 not UTF-8`` (None when nothing was skipped)."""
        return skipped_text(self.skipped)


def skipped_text(skipped: Counter) -> str | None:
    total = sum(skipped.values())
    if not total:
        return None
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} file{'s' if total != 1 else ''}: {reasons}"


def collect(args: Sequence[str], encoding: str | None = None) -> Collected:
    """Read every attachment ``args`` names (see the module docstring for what is an error).

    ``encoding`` decodes files in another encoding than UTF-8 (``latin-1``, ``cp1252``); a file that
    is the same path twice is read once.
    """
    out = Collected()
    seen: set[str] = set()
    for arg in args:
        for key, attachment in _expand(str(arg), encoding, out.skipped):
            if key not in seen:
                seen.add(key)
                out.append(attachment)
    total = sum(a.size for a in out)
    if total > MAX_TOTAL_BYTES:
        raise LMAssistError(
            f"the attachments add up to {human_size(total)}; the limit is {human_size(MAX_TOTAL_BYTES)} — "
            "attach fewer files, or index the folder with `lmassist docs add` and ask with --docs"
        )
    return out


def _expand(arg: str, encoding: str | None, skipped: Counter) -> list[tuple[str, Attachment]]:
    if arg == "-":
        return [("-", _stdin(encoding))]
    if not arg.strip():
        raise LMAssistError("an empty name was given to -f; give a file, a folder, a glob or -")
    path = Path(arg).expanduser()
    if os.path.lexists(path):
        if path.is_dir():
            return _folder(arg, path, encoding, skipped)
        return [(os.path.realpath(path), _file(arg, path, encoding))]
    if glob.has_magic(arg):
        return _glob(arg, encoding, skipped)
    raise LMAssistError(f"no such file or folder: {arg}")


def _stdin(encoding: str | None) -> Attachment:
    data = read_stdin_bytes()
    if not data:
        raise LMAssistError("-f - means stdin, but nothing was piped in")
    text = _decode(data, STDIN_NAME, encoding)
    if not text.strip():
        raise LMAssistError("-f -: stdin holds only whitespace; nothing to attach")
    return Attachment.from_text(STDIN_NAME, text)


def _file(name: str, path: Path, encoding: str | None) -> Attachment:
    """A file the user named: anything wrong with it is an error naming it."""
    try:
        st = path.stat()
    except OSError:
        st = None  # a dangling link or no permission: read_file_bytes words the error
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size > MAX_ATTACHMENT_BYTES:
        raise LMAssistError(
            f"{name} is {human_size(st.st_size)}; an attachment can be at most {human_size(MAX_ATTACHMENT_BYTES)} "
            "— index it with `lmassist docs add` and ask with --docs"
        )
    text = _decode(read_file_bytes(str(path)), name, encoding)
    if not text.strip():
        raise LMAssistError(f"{name} is empty; nothing to attach")
    return Attachment.from_text(name, text)


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    if encoding is None:
        try:
            return to_text(data, name)
        except Skipped as e:
            raise LMAssistError(str(e)) from None
    if b"\x00" in data and not encoding.lower().replace("-", "").startswith("utf16"):
        raise LMAssistError(f"{name} looks like a binary file, not text")
    try:
        return data.decode(encoding)
    except LookupError:
        raise LMAssistError(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        raise LMAssistError(f"{name} is not {encoding} text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def _lenient(name: str, path: Path, encoding: str | None, skipped: Counter) -> Attachment | None:
    """A file found in a folder or by a glob: anything wrong with it is counted, not raised."""
    try:
        data = read_bytes(path, MAX_ATTACHMENT_BYTES)
        text = to_text(data, name) if encoding is None else _decode(data, name, encoding)
    except Skipped as e:
        skipped[e.reason] += 1
        return None
    except LMAssistError:
        skipped["binary" if b"\x00" in data else f"not {encoding}"] += 1
        return None
    if not text.strip():
        skipped[EMPTY] += 1
        return None
    return Attachment.from_text(name, text)


def _folder(arg: str, path: Path, encoding: str | None, skipped: Counter) -> list[tuple[str, Attachment]]:
    here: Counter = Counter()
    walk = Walk(path)
    found = []
    for info in walk.files():
        name = str(PurePath(arg) / info.rel)
        attachment = _lenient(name, info.path, encoding, here)
        if attachment is not None:
            found.append((os.path.realpath(info.path), attachment))
    here.update(walk.skipped)
    skipped.update(here)
    if not found:
        why = skipped_text(here)
        raise LMAssistError(f"folder {arg} has no readable text files" + (f" ({why})" if why else ""))
    return found


def _glob(arg: str, encoding: str | None, skipped: Counter) -> list[tuple[str, Attachment]]:
    matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
    if not matches:
        raise LMAssistError(f"no files match {arg}")
    here: Counter = Counter()
    found = []
    for match in matches:
        path = Path(match)
        if path.is_dir():
            try:
                found.extend(_folder(match, path, encoding, here))
            except LMAssistError:
                pass  # an empty folder among the matches; counted in ``here``
            continue
        attachment = _lenient(match, path, encoding, here)
        if attachment is not None:
            found.append((os.path.realpath(path), attachment))
    skipped.update(here)
    if not found:
        why = skipped_text(here)
        raise LMAssistError(f"nothing readable matches {arg}" + (f" ({why})" if why else ""))
    return found
