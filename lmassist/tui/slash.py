"""Reading slash commands: the word and its arguments, and completion of command names and paths.

The commands themselves are in :mod:`lmassist.tui.commands`. Completion is computed here, away from
the widget, so that it is plain functions of the text typed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
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


def complete(text: str, commands: Sequence[Command], cwd: Path | None = None) -> tuple[str, list[str]]:
    """What to add after ``text`` (the ghost suggestion) and the candidates to show.

    The command word completes against the known commands; after it, the last word completes as a
    path for commands that take one.
    """
    if not text.startswith("/") or "\n" in text:
        return "", []
    word, space, rest = text[1:].partition(" ")
    if not space:
        names = sorted(c.name for c in commands if c.name.startswith(word.lower()))
        if not names:
            return "", []
        prefix = _common_prefix(names)
        suffix = prefix[len(word):]
        if len(names) == 1:
            suffix += " "
        return suffix, ["/" + n for n in names]
    command = next((c for c in commands if c.name == word.lower()), None)
    if command is None or not command.takes_path:
        return "", []
    partial = rest.rsplit(" ", 1)[-1]
    if partial.startswith("-"):
        return "", []
    found = path_candidates(partial, cwd)
    if not found:
        return "", []
    prefix = _common_prefix(found)
    return prefix[len(partial):], found
