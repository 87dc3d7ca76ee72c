"""Reading the text users hand us: files, '-' for stdin, piped stdin.

Tasks and commands share it so that every bad input (a missing file, a folder, binary or non-UTF-8
data, something too big) gives the same one-line error wherever it is read.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lmassist.errors import LMAssistError

MAX_INPUT_BYTES = 50 * 1024 * 1024


def decode_text(data: bytes, source: str) -> str:
    """Text from bytes, or a one-line error for binary or non-UTF-8 input."""
    if b"\x00" in data[:8192]:
        raise LMAssistError(f"{source} looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LMAssistError(f"{source} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def _bounded_read(stream: BinaryIO, source: str) -> bytes:
    """At most MAX_INPUT_BYTES + 1 bytes: whatever the input is (a device reports size 0), memory
    stays bounded and an endless input stops with one line."""
    chunks: list[bytes] = []
    got = 0
    while got <= MAX_INPUT_BYTES:
        chunk = stream.read(min(1 << 20, MAX_INPUT_BYTES + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > MAX_INPUT_BYTES:
        raise LMAssistError(f"{source} is larger than {MAX_INPUT_BYTES // 2**20} MB; the limit is "
                            f"{MAX_INPUT_BYTES // 2**20} MB, pass a smaller input")
    return b"".join(chunks)


def read_stdin_bytes() -> bytes | None:
    """Piped stdin's bytes (bounded); None when stdin is a terminal (nothing was piped)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return None
    try:
        return _bounded_read(stream.buffer, "stdin")
    except (OSError, ValueError, AttributeError):
        return None


def read_stdin() -> str | None:
    """Piped stdin as text; None when stdin is a terminal (nothing was piped)."""
    data = read_stdin_bytes()
    return None if data is None else decode_text(data, "stdin")


@contextmanager
def one_line_errors(path: str) -> Iterator[None]:
    """The file system's errors while looking at or reading ``path``, as one line naming it."""
    try:
        yield
    except FileNotFoundError:
        raise LMAssistError(f"no such file: {path}") from None
    except PermissionError:
        raise LMAssistError(f"cannot read {path}: permission denied") from None
    except IsADirectoryError:
        raise LMAssistError(f"{path} is a folder; give a file") from None
    except OSError as e:
        raise LMAssistError(f"cannot read {path}: {e.strerror or e}") from None


def read_file_bytes(path: str, bounded: bool = True) -> bytes:
    """A regular file's bytes; a missing file, a folder, a pipe or a device is a one-line error.

    Named pipes and devices are refused rather than read: a FIFO with no writer blocks forever and
    ``/dev/zero`` never ends. Piping them to stdin (``-``) still works, with the same bound. A
    training corpus may be larger than the tasks' bound (``bounded=False``); it is still a file.
    """
    p = Path(path).expanduser()
    with one_line_errors(path):
        st = p.stat()
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise LMAssistError(f"{path} is a folder; give a file")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise LMAssistError(f"{path} is {kind}, not a file; to read from it, pipe it to stdin and give '-' "
                            f"(at most {MAX_INPUT_BYTES // 2**20} MB is read)")
    if bounded and st.st_size > MAX_INPUT_BYTES:
        raise LMAssistError(f"{path} is {st.st_size / 2**20:.0f} MB; the limit is {MAX_INPUT_BYTES // 2**20} MB")
    with one_line_errors(path), p.open("rb") as f:
        return _bounded_read(f, path) if bounded else f.read()


def read_text_file(path: str | Path, bounded: bool = True) -> str:
    """A file's text, with '-' meaning stdin; each failure a one-line error naming the file.

    ``bounded=False`` lifts the size limit for a file (a training corpus may be large); stdin keeps it.
    """
    name = str(path)
    if name == "-":
        text = read_stdin()
        if text is None:
            raise LMAssistError("'-' means stdin, but nothing was piped in")
        return text
    return decode_text(read_file_bytes(name, bounded), name)
