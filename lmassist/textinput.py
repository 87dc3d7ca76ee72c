"""Reading the text users hand us: files, '-' for stdin, piped stdin.

Tasks and commands share it so that every bad input (a missing file, a folder, binary or non-UTF-8
data, something too big) gives the same one-line error wherever it is read.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lmassist.generation import LMAssistError

MAX_INPUT_BYTES = 50 * 1024 * 1024


def decode_text(data: bytes, source: str) -> str:
    """Text from bytes, or a one-line error for binary or non-UTF-8 input."""
    if b"\x00" in data[:8192]:
        raise LMAssistError(f"{source} looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LMAssistError(f"{source} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def read_stdin() -> str | None:
    """Piped stdin as text; None when stdin is a terminal (nothing was piped)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return None
    try:
        data = stream.buffer.read(MAX_INPUT_BYTES + 1)
    except (OSError, ValueError):
        return None
    if len(data) > MAX_INPUT_BYTES:
        raise LMAssistError(f"stdin is larger than {MAX_INPUT_BYTES // 2**20} MB; pass a smaller input")
    return decode_text(data, "stdin")


def read_text_file(path: str) -> str:
    """A file's text, with '-' meaning stdin; each failure a one-line error naming the file."""
    if path == "-":
        text = read_stdin()
        if text is None:
            raise LMAssistError("'-' means stdin, but nothing was piped in")
        return text
    p = Path(path).expanduser()
    if not p.exists():
        raise LMAssistError(f"no such file: {path}")
    if p.is_dir():
        raise LMAssistError(f"{path} is a folder; give a file")
    try:
        size = p.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise LMAssistError(f"{path} is {size / 2**20:.0f} MB; the limit is {MAX_INPUT_BYTES // 2**20} MB")
        data = p.read_bytes()
    except PermissionError:
        raise LMAssistError(f"cannot read {path}: permission denied") from None
    except OSError as e:
        raise LMAssistError(f"cannot read {path}: {e.strerror}") from None
    return decode_text(data, path)
