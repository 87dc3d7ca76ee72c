"""Slash commands: the built-in ones, one per registered task, and completion of names and paths.

Completion is computed here, away from the widget, so that it is plain functions of the text typed.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    summary: str
    takes_path: bool = False


BUILTINS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "/help", "show commands and keys"),
    SlashCommand("model", "/model [NAME]", "switch model (no name: pick from a list)"),
    SlashCommand("models", "/models", "list the models you can switch to"),
    SlashCommand("new", "/new", "start a new chat"),
    SlashCommand("system", "/system [TEXT]", "set (or clear) this chat's system prompt"),
    SlashCommand("set", "/set KEY VALUE", "set a generation option (temperature, max_new_tokens, ...)"),
    SlashCommand("settings", "/settings", "edit system prompt and options"),
    SlashCommand("regen", "/regen", "regenerate the last reply"),
    SlashCommand("edit", "/edit", "edit and resend your last message"),
    SlashCommand("copy", "/copy", "copy the last reply to the clipboard"),
    SlashCommand("rename", "/rename TITLE", "rename this chat"),
    SlashCommand("export", "/export md|json [PATH]", "save this chat as Markdown or JSON", takes_path=True),
    SlashCommand("open", "/open", "pick a file and insert its path"),
    SlashCommand("plugins", "/plugins", "installed plugins and their errors"),
    SlashCommand("quit", "/quit", "leave the app"),
)


def task_command(task: object) -> SlashCommand:
    """A task plugin seen as a slash command; its usage line says whether it takes a path."""
    name = str(getattr(task, "name", ""))
    usage = str(getattr(task, "slash_usage", "") or f"/{name} ARGS")
    summary = str(getattr(task, "summary", "") or "")
    return SlashCommand(name, usage, summary, takes_path=any(w in usage.upper() for w in ("PATH", "FILE")))


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


def complete(text: str, commands: list[SlashCommand], cwd: Path | None = None) -> tuple[str, list[str]]:
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
