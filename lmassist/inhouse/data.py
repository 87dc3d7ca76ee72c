"""Training text: read files and folders, normalise, split, and hold the tokens as one array.

Token ids live in one numpy array (``uint16`` when the vocabulary allows), memory-mapped from the
cache folder for large corpora, never as Python lists (a list costs dozens of bytes per token).
Every problem with the input (missing file, binary data, not UTF-8, nothing left) is a one-line
:class:`~lmassist.errors.LMAssistError`.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmassist.errors import LMAssistError
from lmassist.textinput import read_text_file

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ".org"}
MEMMAP_TOKENS = 20_000_000  # above this many tokens, keep ids on disk and map them
ENCODE_CHUNK = 1 << 20  # characters encoded at a time, so no corpus-sized Python list ever exists


def find_text_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand folders into their text/Markdown files (sorted); check each named path exists."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise LMAssistError(f"no text files ({', '.join(sorted(TEXT_SUFFIXES))}) in folder {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise LMAssistError(f"not a regular file: {path}")
        else:
            raise LMAssistError(f"no such file or folder: {path}")
    if not files:
        raise LMAssistError("no input files given")
    return files


_SPACES = re.compile(r"[^\S\n]+\n")  # trailing whitespace on a line
_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str, lowercase: bool = False) -> str:
    """Unify line endings, odd spaces and runs of blank lines, so the model learns text, not noise."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u2007", " ").replace("\u202f", " ").replace("\t", "    ")
    text = _SPACES.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    text = text.strip("\n") + "\n" if text.strip() else ""
    return text.lower() if lowercase else text


def read_corpus(inputs: Iterable[str | Path], lowercase: bool = False) -> tuple[str, list[Path]]:
    """All input files, normalised and joined by blank lines; raises if nothing is left."""
    files = find_text_files(inputs)
    parts = [normalize(read_text_file(p, bounded=False), lowercase) for p in files]  # no size limit
    text = "\n".join(p for p in parts if p)
    if not text.strip():
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise LMAssistError(f"the training text is empty ({names})")
    return text, files


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The last ``val_fraction`` of the text is for validation, the rest for training."""
    if not 0 < val_fraction < 1:
        raise LMAssistError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def to_ids(ids: list[int] | np.ndarray, vocab_size: int, cache_dir: Path | None = None) -> np.ndarray:
    """Token ids as one compact array; large ones are written to disk and memory-mapped."""
    dtype = np.uint16 if vocab_size <= 65536 else np.int32
    arr = np.asarray(ids, dtype=dtype)
    if len(arr) > MEMMAP_TOKENS:
        folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="tokens-", suffix=".npy")
        with open(fd, "wb") as f:
            np.save(f, arr)
        del arr
        arr = np.load(name, mmap_mode="r")
        Path(name).unlink()  # the mapping keeps the data alive; nothing is left behind on exit
    return arr


def text_chunks(text: str, size: int = ENCODE_CHUNK) -> Iterator[str]:
    """Pieces of about ``size`` characters that tokenize exactly as the whole text does.

    A piece ends after a newline that is followed by a non-space character: both the character and the
    byte-level BPE pre-tokenizers split there anyway, so encoding piece by piece changes no token.
    """
    start = 0
    while start < len(text):
        end = text.find("\n", start + size)
        while end != -1 and end + 1 < len(text) and text[end + 1].isspace():
            end = text.find("\n", end + 1)
        end = len(text) if end == -1 else end + 1
        yield text[start:end]
        start = end


def encode_ids(tokenizer: Any, text: str, cache_dir: Path | None = None, chunk: int = ENCODE_CHUNK) -> np.ndarray:
    """Encode ``text`` chunk by chunk straight into one compact array (see :func:`to_ids`)."""
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.int32
    parts = [np.asarray(tokenizer.encode(piece), dtype=dtype) for piece in text_chunks(text, chunk)]
    return to_ids(np.concatenate(parts) if parts else np.zeros(0, dtype), tokenizer.vocab_size, cache_dir)


@dataclass
class DataReport:
    files: int
    characters: int
    train_tokens: int
    val_tokens: int
    vocab_size: int

    @property
    def chars_per_token(self) -> float:
        return self.characters / max(1, self.train_tokens + self.val_tokens)

    def lines(self) -> list[str]:
        return [
            f"{self.files} file(s), {self.characters:,} characters",
            f"{self.train_tokens:,} training tokens, {self.val_tokens:,} validation tokens "
            f"({self.chars_per_token:.2f} characters per token)",
            f"vocabulary: {self.vocab_size:,} tokens",
        ]


def check_trainable(ids: np.ndarray, context_length: int, what: str) -> None:
    if len(ids) < 2:
        raise LMAssistError(f"the {what} split is too short to learn from ({len(ids)} tokens)")
