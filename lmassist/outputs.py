"""Writing the file a user named with ``-o``/``--output``, without ever destroying what was at the path.

The rules, the same for every command that writes a user-named file:

- a regular file is replaced atomically (a crash leaves the old or the new content, never half), and
  keeps its permission bits and, where we may, its owner: a 644 file stays 644;
- a regular file with several hard links is rewritten in place, so every name still sees the new text
  (an atomic replace would silently detach this name from the others); so is a writable file in a
  folder where no temporary file can be created;
- a symbolic link is written through, like the shell's ``>``: its target gets the new content and the
  link stays a link (a dangling link creates its target);
- a folder, a device (``/dev/full``, ``/dev/null``), a FIFO or a socket is refused with one line: lmassist
  would otherwise replace a device node with a regular file, or block on a FIFO. Redirect stdout instead;
- missing parent folders are created, but only at write time and only below an existing folder that we
  can write into.

:func:`check_output` runs these checks *before* a command does its work, so a typo in ``-o`` costs
milliseconds, not a summarization; :func:`write_output` checks again (the path may have changed in the
meantime) and writes. Every failure is an :class:`LMAssistError` with one line, never a raw ``OSError``.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from lmassist.errors import LMAssistError

_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class OutputTarget:
    """Where the text will go: ``path`` as the user gave it, ``real`` with symbolic links followed."""

    path: Path
    real: Path
    exists: bool
    in_place: bool = False  # rewrite the file itself rather than replace it (see check_output)


def _fail(path: Path | str, why: str) -> LMAssistError:
    return LMAssistError(f"cannot write {path}: {why}")


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _probe_folder(folder: Path, shown: Path | str) -> None:
    """Create and remove a file in ``folder``: the only check that also holds for root, read-only
    mounts, ACLs and immutable folders (``os.access`` is true for root on a 555 folder)."""
    probe = folder / f".lmassist-probe-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        raise _fail(shown, f"cannot create files in {folder} ({_reason(e)})") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def _nearest_folder(path: Path, shown: Path | str) -> Path:
    """The closest existing ancestor of ``path``, which must be a folder (not a file used as one)."""
    parent = path.parent
    while True:
        try:
            st = os.stat(parent)
        except (FileNotFoundError, NotADirectoryError):  # keep climbing to what exists
            if parent.parent == parent:
                raise _fail(shown, f"{parent} does not exist") from None
            parent = parent.parent
            continue
        except OSError as e:
            raise _fail(shown, f"{parent}: {_reason(e)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise _fail(shown, f"{parent} is not a folder")
        return parent


def check_output(path: str | os.PathLike[str]) -> OutputTarget:
    """Check that ``path`` can be written as the rules above allow, before any work is done.

    Raises :class:`LMAssistError` (one line) when it cannot; creates nothing that stays.
    """
    shown = Path(path)
    if str(path) == "":
        raise LMAssistError("the output file name is empty")
    real = Path(os.path.realpath(shown))
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):  # the second: a file used as a folder on the way
        st = None
    except OSError as e:  # a symlink loop, a name too long, a folder we may not enter
        raise _fail(shown, _reason(e)) from None
    if st is None:
        folder = _nearest_folder(real, shown)
        _probe_folder(folder, shown)
        return OutputTarget(shown, real, exists=False)
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFDIR:
        raise _fail(shown, "it is a folder; give a file name")
    if kind != stat.S_IFREG:
        what = _KINDS.get(kind, "not a regular file")
        raise _fail(shown, f"it is {what}; lmassist writes only regular files "
                           f"(to send the output there, redirect stdout: > {shown})")
    if not os.access(real, os.W_OK):
        raise _fail(shown, "the file is read-only")
    in_place = st.st_nlink > 1  # an atomic replace would detach this name from the file's other names
    if not in_place:
        try:
            _probe_folder(real.parent, shown)
        except LMAssistError:  # a writable file in a folder we may not add to: rewrite it in place
            in_place = True
    return OutputTarget(shown, real, exists=True, in_place=in_place)


def _write_in_place(real: Path, data: bytes) -> None:
    with open(real, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def _write_replacing(real: Path, data: bytes, old: os.stat_result | None) -> None:
    """A temporary file beside the target, then ``os.replace``: readers see the old or the new file."""
    while True:
        tmp = real.parent / f".{real.name}.{secrets.token_hex(4)}.tmp"
        try:
            # 0o666 for a new file: the kernel applies the user's umask, as the shell's ``>`` does.
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 if old is None else 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None and hasattr(os, "fchmod"):  # POSIX; Windows has no mode bits to keep
                os.fchmod(f.fileno(), stat.S_IMODE(old.st_mode))
                try:
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
                except OSError:  # not ours to give away: the file becomes the writer's, as with cp
                    pass
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_output(target: OutputTarget | str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to the checked target; returns the path as the user named it."""
    checked = check_output(target.path if isinstance(target, OutputTarget) else target)
    data = text.encode("utf-8")
    real = checked.real
    try:
        if not checked.exists:
            real.parent.mkdir(parents=True, exist_ok=True)
        try:
            old = os.stat(real)
        except FileNotFoundError:
            old = None
        if old is not None and (checked.in_place or old.st_nlink > 1):
            _write_in_place(real, data)
        else:
            _write_replacing(real, data, old)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _fail(checked.path, "no space left on the device") from None
        raise _fail(checked.path, _reason(e)) from None
    return checked.path
