"""One turn at a time in a conversation, across processes: a lock file per conversation."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lmassist.errors import LMAssistError

if TYPE_CHECKING:
    from lmassist.store.history import Store

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range locks instead
    fcntl = None  # type: ignore[assignment]
    import msvcrt


class TurnLockCancelled(LMAssistError):
    """Waiting for another process's turn in the same conversation was given up (a signal, Esc)."""


@contextmanager
def turn_lock(
    store: Store,
    cid: str,
    *,
    cancelled: Callable[[], bool] = lambda: False,
    waiting: Callable[[], None] | None = None,
    poll_s: float = 0.1,
) -> Iterator[None]:
    """Hold conversation ``cid`` for one turn: from reading its context to saving the reply.

    Two processes continuing one conversation at once would each read the same context and save
    their questions, then their answers, interleaved. With this lock the second waits (``waiting``
    is called once, so it can say so) and then reads a context that has the first one's answer.
    A lock file per conversation next to the database, locked with ``flock``: the kernel releases
    it when its process dies, whatever killed it. ``cancelled`` is polled while waiting.
    """
    folder = store.path.parent / f"{store.path.name}.turns"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LMAssistError(f"cannot create {folder} for conversation locks: {e.strerror or e}") from None
    path = folder / f"{store.resolve(cid)}.lock"
    said = False
    while True:
        fd = _try_lock(path)
        if fd is not None:
            break
        if cancelled():
            raise TurnLockCancelled("stopped while waiting for another lmassist's reply in this conversation")
        if not said and waiting is not None:
            waiting()
            said = True
        time.sleep(poll_s)
    try:
        yield
    finally:
        _unlock(path, fd)


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock on ``path``, or None when another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise LMAssistError(f"cannot open conversation lock {path}: {e.strerror or e}") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # Windows
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return None
        if fcntl is None:
            return fd
        # The holder before us unlinks the file as it lets go; if that happened after we opened
        # it, our lock is on a file nobody else will see: open the path again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    try:
        if fcntl is not None:
            try:
                path.unlink()  # while still holding it, so no lock file is left behind
            except OSError:
                pass
        else:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)

