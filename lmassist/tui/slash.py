"""Reading slash commands: the word and its arguments, and completion of command names and paths.

The commands themselves are in :mod:`lmassist.tui.commands`. Completion is computed here, away from
the widget, so that it is plain functions of the text typed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmassist.tui.commands import Command


def parse(text: str) -> tuple[str, str] | None:
    """``"/summarize a.md --length short"`` → ``("summarize", "a.md --length short")``; None if not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    name, _, rest = stripped[1:].partition(" ")
    return name.lower(), rest.strip()


def split_args(argline: str) -> list[str]:
    """Shell-like words, but a stray quote is kept rather than raising."""
    try:
        return shlex.split(argline)
    except ValueError:
        return argline.split()


def _common_prefix(words: list[str]) -> str:
    return os.path.commonprefix(words) if words else ""


def path_candidates(partial: str, cwd: Path | None = None, limit: int = 200) -> list[str]:
    """Paths that complete ``partial`` (folders end with ``/``); hidden files only when asked for."""
    expanded = os.path.expanduser(partial)
    head, sep, stem = expanded.rpartition("/")
    if sep:
        folder = Path(head or "/")
        if not folder.is_absolute():
            folder = Path(cwd or Path.cwd()) / folder
    else:
        folder = Path(cwd or Path.cwd())
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    shown_head = partial.rpartition("/")[0]
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        shown = (shown_head + "/" if "/" in partial else "") + entry.name + ("/" if is_dir else "")
        found.append(shown)
        if len(found) >= limit:
            break
    return found


GLOB_CHARS = "*?["


def glob_candidates(pattern: str, cwd: Path | None = None, limit: int = 200) -> list[str]:
    """What a glob (``notes/*.md``, ``src/**/*.py``) matches, as ``/attach`` and ``ask -f`` read it."""
    import glob  # here: this module is on the path to the first frame, globs are typed later

    root = str(cwd or Path.cwd())
    found = []
    for match in glob.iglob(os.path.expanduser(pattern), root_dir=root, recursive=True):
        found.append(match)
        if len(found) >= limit:
            break
    return sorted(found)


def _complete_word(partial: str, words: Sequence[str]) -> tuple[str, list[str]]:
    found = sorted(w for w in words if w.startswith(partial))
    if not found:
        return "", []
    suffix = _common_prefix(found)[len(partial):]
    return suffix + (" " if len(found) == 1 else ""), found


def complete(text: str, commands: Sequence[Command], cwd: Path | None = None,
             words: Callable[[str], list[str]] | None = None) -> tuple[str, list[str]]:
    """What to add after ``text`` (the ghost suggestion) and the candidates to show.

    The command word completes against the known commands; after it, the first argument completes
    against the command's own words (``words(command.arg_words)``: template or collection names) when
    it has them, and the last word as a path for commands that take one (a glob shows what it
    matches, adding nothing).
    """
    if not text.startswith("/") or "\n" in text:
        return "", []
    word, space, rest = text[1:].partition(" ")
    if not space:
        suffix, names = _complete_word(word.lower(), [c.name for c in commands])
        return suffix, ["/" + n for n in names]
    command = next((c for c in commands if c.name == word.lower()), None)
    if command is None:
        return "", []
    partial = rest.rsplit(" ", 1)[-1]
    if command.arg_words:
        if " " in rest or words is None:
            return "", []
        return _complete_word(partial, words(command.arg_words))
    if not command.takes_path or partial.startswith("-"):
        return "", []
    if any(c in partial for c in GLOB_CHARS):
        return "", glob_candidates(partial, cwd)
    found = path_candidates(partial, cwd)
    if not found:
        return "", []
    prefix = _common_prefix(found)
    return prefix[len(partial):], found
