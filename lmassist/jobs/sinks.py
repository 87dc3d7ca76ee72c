"""Where a job's results go: a mirrored ``--out`` tree (one file per input, a manifest beside them)
or a JSON Lines stream (stdout or ``-o``, one line per record, flushed as it is written).

A tree output is up to date when the manifest's line for it holds the same signature (input
content, model, task options, lmassist version) and the file is there; re-running the same
command then skips it. The manifest and the per-input memos live in ``OUT/.lmassist/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import IO, Any

from lmassist import __version__
from lmassist.errors import LMAssistError
from lmassist.jobs.inputs import JobInput, Loaded
from lmassist.jobs.memo import Memo
from lmassist.outputs import check_output, write_output

STATE_DIR = ".lmassist"


def signature(input_hash: str, model: str, options: dict[str, Any]) -> str:
    """What an output depends on, as one string: equal signatures mean an equal output."""
    return json.dumps({"input": input_hash, "model": model, "options": options, "version": __version__},
                      sort_keys=True, ensure_ascii=False, default=str)


class TreeSink:
    """Outputs mirrored under ``root``; other files copied or skipped; a manifest of what is done."""

    def __init__(self, root: Path, other: str) -> None:
        self.root = Path(root)
        self.other_mode = other
        self.memo_dir = self.root / STATE_DIR / "memo"
        self.manifest = Memo(self.root / STATE_DIR / "manifest.jsonl")
        self._claimed: dict[str, str] = {}

    def target(self, inp: JobInput) -> Path:
        """The output of ``inp``: the same relative path under the root (one output per input)."""
        rel = inp.rel
        owner = self._claimed.setdefault(rel, inp.path)
        if owner != inp.path:
            raise LMAssistError(f"{inp.path} and {owner} would both be written to {rel}; rename one, "
                                "or leave one out with --exclude")
        if rel.split("/", 1)[0] == STATE_DIR:
            raise LMAssistError(f"{rel} is where lmassist keeps its job state; rename the input")
        return self.root / rel

    def is_current(self, inp: JobInput, sig: str) -> bool:
        return self.manifest.get(inp.rel) == sig and self.target(inp).is_file()

    def write(self, inp: JobInput, sig: str, text: str, data: dict[str, Any]) -> str:
        path = self.target(inp)
        write_output(path, text if text.endswith("\n") or not text else text + "\n")
        self.manifest.put(inp.rel, sig)
        return str(path)

    def other(self, inp: JobInput, loaded: Loaded, sig: str) -> bool:
        """Copy a file that is not text (``--other copy``); True when copied, False when skipped."""
        if self.other_mode != "copy":
            return False
        path = self.target(inp)
        if self.manifest.get(inp.rel) == sig and path.is_file():
            return True
        _copy_atomically(Path(inp.path), check_output(path).real)
        self.manifest.put(inp.rel, sig)
        return True

    def close(self) -> None:
        self.manifest.close()
        self.manifest.compact()


def _copy_atomically(src: Path, dest: Path) -> None:
    """``src`` copied to ``dest`` through a temporary file beside it, streamed (any size)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.tmp"
        try:
            shutil.copyfile(src, tmp)
            shutil.copymode(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise LMAssistError(f"cannot copy {src} to {dest}: {e.strerror or e}") from None


class StreamSink:
    """JSON Lines on stdout, or into ``-o FILE``: written to a temporary file beside it and moved
    into place at the end, or at an interruption, so the file holds every finished record."""

    other_mode = "skip"

    def __init__(self, output: str | None, memo_dir: Path) -> None:
        self.memo_dir = memo_dir
        self._target = check_output(output) if output and output != "-" else None
        self._tmp: Path | None = None
        self.stream: IO[str] = sys.stdout
        if self._target is not None:
            real = self._target.real
            real.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = real.parent / f".{real.name}.{secrets.token_hex(4)}.part"
            self.stream = open(self._tmp, "w", encoding="utf-8")

    def is_current(self, inp: JobInput, sig: str) -> bool:
        return False  # a stream has nothing earlier to compare with

    def record(self, record: dict[str, Any]) -> None:
        try:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.stream.flush()  # a pipeline reads each record as soon as it is done
        except BrokenPipeError:
            raise LMAssistError("the reader of the output went away (broken pipe)") from None

    def write(self, inp: JobInput, sig: str, text: str, data: dict[str, Any]) -> str:
        self.record({"source": inp.path if inp.path != "-" else "stdin", **data,
                     **({} if "text" in data else {"text": text})})
        return ""

    def other(self, inp: JobInput, loaded: Loaded, sig: str) -> bool:
        return False

    def close(self) -> None:
        if self._tmp is None or self._target is None:
            return
        self.stream.close()
        try:
            os.replace(self._tmp, self._target.real)
        except OSError as e:
            raise LMAssistError(f"cannot write {self._target.path}: {e.strerror or e}") from None
        finally:
            self._tmp.unlink(missing_ok=True)
