"""Which kind of run a task command is, checked before any model is loaded.

Three kinds, from the arguments alone:

- a **tree** (``--out DIR``): one output per input under DIR, the same relative path, resumable;
- a **stream** (a folder, a glob, ``--files-from``, ``--include/--exclude`` or ``--jsonl``, no
  ``--out``): JSON Lines on stdout or ``-o``, one record per input (per line for a task with a
  streaming face of its own, such as ``sentiment --per-line``), flushed as each is done;
- otherwise a **single** run: files named one by one (or stdin) give one result, as they always
  did; its finished chunks are kept in a memo under the cache folder, so Ctrl+C loses nothing.
"""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmassist.config import paths
from lmassist.errors import LMAssistError
from lmassist.jobs.inputs import JobInput, Selection, collect, is_job
from lmassist.jobs.runner import JOB_OPTIONS

# A task whose outputs mirror a tree of documents copies the files it cannot read (images of a
# docs tree); any other (summaries, labels) leaves them out. --other overrides.
COPIES_OTHER_FILES = frozenset({"translate"})
MEMO_MAX_AGE_DAYS = 30


@dataclass
class JobPlan:
    """A tree or stream run: its inputs (listed, not read) and where results go."""

    kind: str  # "tree" or "stream"
    inputs: list[JobInput]
    out: Path | None
    output: str | None
    other: str
    force: bool
    concurrency: int
    overview: bool


def pop_job_options(values: dict[str, Any]) -> dict[str, Any]:
    """Take the job's own options out of a command's values (what remains goes to the task)."""
    return {k: values.pop(k) for k in JOB_OPTIONS if k in values}


def plan_job(task_name: str, values: dict[str, Any], job: dict[str, Any], output: str | None,
             as_json: bool) -> JobPlan | None:
    """The tree or stream run the arguments ask for, or None for a single run; every mistake
    (``--out`` with ``-o``, a missing folder, a glob that matches nothing) a one-line error."""
    files = tuple(values.get("files") or ())
    concurrency = 1 if job.get("concurrency") is None else job["concurrency"]
    if concurrency < 1:
        raise LMAssistError("--concurrency must be at least 1")
    if values.get("encoding"):
        try:
            codecs.lookup(values["encoding"])
        except LookupError:
            raise LMAssistError(f"unknown encoding {values['encoding']!r}; try utf-8, latin-1 or cp1252") from None
    out = job.get("out")
    streaming = job.get("jsonl") or job.get("files_from") or job.get("include") or job.get("exclude")
    if not out and not streaming and not is_job(files):
        if job.get("overview"):
            raise LMAssistError("--overview needs --out DIR (the overview is written beside the summaries)")
        return None
    if out:
        _check_tree(out, files, output, as_json)
    elif job.get("overview"):
        raise LMAssistError("--overview needs --out DIR (the overview is written beside the summaries)")
    sel = Selection(tuple(job.get("include") or ()), tuple(job.get("exclude") or ()),
                    skip=Path(out) if out else None)
    inputs = collect(files, job.get("files_from"), sel)
    other = job.get("other") or ("copy" if task_name in COPIES_OTHER_FILES else "skip")
    return JobPlan("tree" if out else "stream", inputs, Path(out) if out else None, output, other,
                   bool(job.get("force")), concurrency, bool(job.get("overview")))


def _check_tree(out: str, files: tuple[str, ...], output: str | None, as_json: bool) -> None:
    if output:
        raise LMAssistError("give --out DIR (one output per input) or -o FILE (one output), not both")
    if as_json:
        raise LMAssistError("--json prints one object; with --out each input gets its own output file "
                            "(for JSON records, leave --out out: a folder streams JSON Lines)")
    if "-" in files:
        raise LMAssistError("stdin ('-') has no path to mirror under --out; give files or folders")
    if os.path.exists(out) and not os.path.isdir(out):
        raise LMAssistError(f"--out {out} is a file; give a folder (it is created when missing)")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LMAssistError(f"cannot create the folder {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise LMAssistError(f"cannot write in {out}: permission denied")


def cache_memo_dir() -> Path:
    """Where single and stream runs keep finished chunks: the cache folder (a run stopped and never
    resumed leaves a file there; :func:`prune_memos` removes those older than a month)."""
    return paths().cache / "memo"


def prune_memos(folder: Path, max_age_days: int = MEMO_MAX_AGE_DAYS) -> None:
    limit = time.time() - max_age_days * 86400
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.name.endswith(".jsonl") and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
        except OSError:
            continue
