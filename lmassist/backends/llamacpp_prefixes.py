"""Evaluated prompt prefixes of a llama.cpp model, kept on disk between runs.

Few-shot tasks put the same long prefix before every input, and every new process paid for reading
it again: for a one-line input, nearly all of the time. llama.cpp writes a sequence's KV cache to a
file together with its tokens and reads it back far faster than it evaluates them, so scoring saves
its state at multiples of :data:`BLOCK` tokens and a later run resumes from the longest saved
prefix of its prompt. Files are named by the model file, llama.cpp's version and the tokens; the
:data:`KEEP` most recently used stay.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
from array import array
from pathlib import Path
from typing import Any

BLOCK = 256  # prefixes are saved at multiples of this many tokens
KEEP = 8  # files kept; the least recently used go first


class PrefixStates:
    """Save and restore sequence 0 of a llama.cpp context for a given token prefix."""

    block = BLOCK

    def __init__(self, folder: Path, model_path: str) -> None:
        import llama_cpp

        self.folder = folder
        self._llama_cpp = llama_cpp
        try:
            st = os.stat(model_path)
            ident: list[Any] = [llama_cpp.__version__, os.path.abspath(model_path), st.st_size, st.st_mtime_ns]
        except OSError:
            ident = [llama_cpp.__version__, model_path]
        self._ident = json.dumps(ident).encode()

    def path(self, tokens: list[int]) -> Path:
        digest = hashlib.sha256(self._ident)
        digest.update(array("i", tokens).tobytes())
        return self.folder / f"{digest.hexdigest()[:32]}.kv"

    def restore(self, ctx: Any, tokens: list[int], valid: int) -> int:
        """Load the state for ``tokens`` into the context when a file holds it, and return how many
        leading tokens the context now holds: ``len(tokens)`` on success, ``valid`` (untouched) when
        there is no file, 0 when a damaged file left the cache cleared."""
        path = self.path(tokens)
        if not path.is_file():
            return valid
        lib = self._llama_cpp
        out = (lib.llama_token * len(tokens))()
        count = ctypes.c_size_t(0)
        ctx.kv_cache_seq_rm(0, 0, -1)
        loaded = lib.llama_state_seq_load_file(ctx.ctx, os.fsencode(path), 0, out, len(tokens), ctypes.byref(count))
        if not loaded or list(out[: count.value]) != tokens:
            ctx.kv_cache_seq_rm(0, 0, -1)
            return 0
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest
        return len(tokens)

    def save(self, ctx: Any, tokens: list[int]) -> None:
        """Write the context's sequence 0, which must hold exactly ``tokens``; never an error (the
        cache only saves time)."""
        lib = self._llama_cpp
        path = self.path(tokens)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            arr = (lib.llama_token * len(tokens))(*tokens)
            if lib.llama_state_seq_save_file(ctx.ctx, os.fsencode(tmp), 0, arr, len(tokens)):
                tmp.replace(path)
            prune(self.folder)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def prune(folder: Path, keep: int = KEEP) -> None:
    """Delete all but the ``keep`` most recently used state files."""
    files = sorted(folder.glob("*.kv"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
