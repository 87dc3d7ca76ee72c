"""The commands that bring the user's own text into a chat: ``/attach``, ``/docs``, ``/template``,
and the one line that sends a folder job (``/summarize DIR``) to the command line.

The work is the shared modules' (:mod:`lmassist.attachments`, :mod:`lmassist.tasks.docs_answer`,
:mod:`lmassist.templates`), reached through :mod:`lmassist.tui.session`; this module reads the
arguments, runs what may block (reading files, asking plugins) in a worker, and says what happened
in the chat. The command table imports it before the first frame, so every one of those modules is
imported inside the handler that needs it.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmassist.errors import LMAssistError, describe
from lmassist.tui.slash import GLOB_CHARS, split_args

if TYPE_CHECKING:
    from lmassist.tui.commands import Command
    from lmassist.tui.screens.chat import ChatScreen

WORDS_TTL_S = 2.0  # how long a list of names for completion is reused before it is read again
FOLDER_COMMANDS = {
    "summarize": "lmassist summarize {dir} --out {stem}-summaries/",
    "translate": "lmassist translate {dir} --to LANG --out {stem}-LANG/",
}


# -- folder jobs ------------------------------------------------------------------------------------


def folder_job_refusal(command: Command, argline: str) -> str | None:
    """One line for a task given a folder or a glob (``/summarize notes/``): the app runs a task on
    one file, and jobs over many (resumable, one output per file) belong to the command line."""
    if command.task is None or not command.takes_path:
        return None
    for word in split_args(argline):
        path = Path(word).expanduser()
        if word.startswith("-") or path.is_file():
            continue
        if path.is_dir():
            what, shown = "a folder", word
        elif any(c in word for c in GLOB_CHARS):
            what, shown = "a glob", f"'{word}'"
        else:
            continue
        stem = word.split("*")[0].rstrip("/") or "out"
        usage = FOLDER_COMMANDS.get(command.name, "lmassist {name} {dir} --out {stem}-{name}/")
        return (f"{word} is {what}; /{command.name} works on one file here. For many files use the "
                f"command line: {usage.format(dir=shown, stem=stem, name=command.name)}")
    return None


# -- /docs ------------------------------------------------------------------------------------------


def collection_names() -> list[str]:
    """The indexed folders' names, from the list the index keeps beside itself (no database opened)."""
    import json

    from lmassist.docindex.index import default_path, list_path

    try:
        entries = json.loads(list_path(default_path()).read_text(encoding="utf-8"))
        return sorted(str(e["name"]) for e in entries)
    except (OSError, ValueError, KeyError, TypeError):
        return []


def collection_root(name: str) -> Path:
    """The folder of collection ``name`` (a one-line error naming the known ones if there is none)."""
    from lmassist.docindex.index import DocIndex

    with DocIndex() as index:
        collections = index.list()
    for coll in collections:
        if coll.name == name:
            return Path(coll.root)
    known = ", ".join(c.name for c in collections)
    hint = f"collections: {known}" if known else "there are none yet"
    raise LMAssistError(f"no folder index named {name!r} ({hint}); index a folder with: "
                        f"lmassist docs add DIR --name {name}")


async def docs(chat: ChatScreen, args: str) -> None:
    """``/docs NAME``: answer from that index from now on; ``/docs off`` stops; ``/docs`` says which."""
    name = args.strip()
    if not name:
        current = chat.session.docs
        await chat.conversation.show_info(
            f"Answering from the folder index **{current}** (`/docs off` stops)." if current else
            "Not answering from a folder index. `/docs NAME` starts (`lmassist docs list` shows the names).")
        return
    if name.lower() == "off":
        chat.session.set_docs(None)
        chat.status.docs = ""
        await chat.conversation.show_info("Answers come from the model alone again.")
        return
    root = collection_root(name)
    chat.session.set_docs(name)
    chat.status.docs = name
    await chat.conversation.show_info(
        f"Answering from **{name}** (`{root}`) for the rest of this chat, with the passages cited under "
        "each answer; select a citation and press Enter (or click it) to read it. `/docs off` stops.")


def open_citation(chat: ChatScreen, docs_name: str, citation: dict[str, Any]) -> None:
    """Show a cited passage in its file, the cited lines selected."""
    from lmassist.tui.screens.passage import PassageScreen

    path = Path(str(citation["path"]))
    if not path.is_absolute():
        path = collection_root(docs_name) / path
    label = f"{citation['path']}:{citation['line']}"
    chat.app.push_screen(PassageScreen(path, int(citation["line"]), int(citation.get("end_line") or 0), label))


# -- /template --------------------------------------------------------------------------------------


def template_names(chat: ChatScreen) -> list[str]:
    """Every usable template's name (the user's files and the plugins'), once plugins are loaded."""
    from lmassist.templates import list_templates

    if not chat.host.registry_ready:
        return []
    return [t.name for t in list_templates(chat.host.registry().manager)]


def template(chat: ChatScreen, args: str) -> None:
    name = args.strip()
    if not name:
        raise LMAssistError("usage: /template NAME (lmassist templates list shows them; Tab completes)")
    chat.run_worker(partial(_apply_template, chat, name), thread=True, group="template")


def _apply_template(chat: ChatScreen, name: str) -> None:
    """Read the template (plugins may register it) and resolve its model off the UI thread, then
    apply it on it."""
    from lmassist.templates import get_template

    try:
        applied = get_template(name, chat.host.registry().manager).apply()
        model = chat.host.resolve(applied.model) if applied.model else None
    except Exception as e:  # noqa: BLE001 - a one-line error in the chat, never a crash
        chat.app.call_from_thread(chat.conversation.show_error, describe(e))
        return
    chat.app.call_from_thread(_use_template, chat, applied, model)


async def _use_template(chat: ChatScreen, applied: Any, model: str | None) -> None:
    """The template's system prompt replaces the chat's, its options go over the chat's, its model
    is switched to and its files are attached (merged by :meth:`lmassist.templates.Template.apply`)."""
    settings = chat.session.settings
    try:
        chat.session.set_settings({
            **settings,
            "system": applied.system if applied.system is not None else settings.get("system"),
            "options": {**(settings.get("options") or {}), **applied.options},
        })
    except LMAssistError as e:
        await chat.conversation.show_error(f"template {applied.template!r}: {e}")
        return
    said = [f"Template **{applied.template}** applied"]
    if applied.system:
        said.append("system prompt set")
    if applied.options:
        said.append("options " + ", ".join(f"`{k}={v}`" for k, v in applied.options.items()))
    if model and model != chat.model_name:
        said.append(f"model **{model}**")
        chat.switch_model(model)
    await chat.conversation.show_info("; ".join(said) + ".")
    if applied.attachments:
        attach_paths(chat, list(applied.attachments))


# -- /attach ----------------------------------------------------------------------------------------


def attach(chat: ChatScreen, args: str) -> None:
    """``/attach PATH…`` (files, folders, globs); with no path, the file picker."""
    paths = split_args(args)
    if not paths:
        chat.action_pick_file()
        return
    if "-" in paths:
        raise LMAssistError("'-' (stdin) cannot be attached in the app; pipe it to lmassist ask -f - or chat -f -")
    attach_paths(chat, paths)


def attach_paths(chat: ChatScreen, paths: list[str]) -> None:
    chat.run_worker(partial(_attach, chat, paths), thread=True, group="attach")


def _attach(chat: ChatScreen, paths: list[str]) -> None:
    """Read the files off the UI thread; the chips and any note are shown on it."""
    try:
        added = chat.session.attach(paths)
    except Exception as e:  # noqa: BLE001 - a one-line error in the chat, nothing else changes
        chat.app.call_from_thread(chat.conversation.show_error, describe(e))
        return
    chat.app.call_from_thread(chat.conversation.show_attachments, added)


# -- completion -------------------------------------------------------------------------------------


class ArgumentWords:
    """The names ``/template`` and ``/docs`` complete against, read at most every ``WORDS_TTL_S``
    (the completion asks at every key)."""

    def __init__(self, chat: ChatScreen) -> None:
        self.chat = chat
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def __call__(self, kind: str) -> list[str]:
        at, words = self._cache.get(kind, (0.0, []))
        if time.monotonic() - at < WORDS_TTL_S:
            return words
        try:
            words = template_names(self.chat) if kind == "templates" else [*collection_names(), "off"]
        except Exception:  # noqa: BLE001 - completion never fails the typing; the command says why
            words = []
        self._cache[kind] = (time.monotonic(), words)
        return words

    def forget(self) -> None:
        self._cache.clear()
