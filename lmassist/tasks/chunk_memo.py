"""Finished chunks kept in a job's memo, so a run stopped by Ctrl+C, a crash or a reboot resumes.

A folder job (:mod:`lmassist.jobs`) opens a memo per input, model and options and passes it to a
task as ``values["memo"]``: any object with ``get(key) -> str | None`` and ``put(key, value)``.
translate and summarize look each chunk up before they spend the model on it and store it once it
is finished, so a re-run redoes only the chunks the last one did not finish. A chunk cut short by a
cancel is never stored: its text is not the chunk's result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

# Part of every key: bump it when a change to the tasks' code changes what a chunk turns into
# (a prompt, the clean-up of a reply), so a memo written before is not reused.
KEY_VERSION = "1"


class Memo(Protocol):
    """What a task needs of a memo (``lmassist.jobs.memo`` provides the real one)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


def chunk_key(task: str, text: str, *parts: str) -> str:
    """A key naming ``text`` and everything else that changes its result (model, language, length,
    the prompt's wording as the user's settings have it): ``task:`` and a SHA-256."""
    digest = hashlib.sha256()
    for part in (KEY_VERSION, task, *parts, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return f"{task}:{digest.hexdigest()}"


def memoized(memo: Memo | None, key: str, cancel: Any, work: Callable[[], str]) -> str:
    """The memo's value for ``key``, else ``work()``, stored unless ``cancel`` was set meanwhile."""
    if memo is not None:
        hit = memo.get(key)
        if hit is not None:
            return hit
    value = work()
    if memo is not None and not (cancel is not None and cancel.cancelled):
        memo.put(key, value)
    return value
