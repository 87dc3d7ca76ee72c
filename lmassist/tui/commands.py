"""The one table of the chat app's commands: slash words, keys, palette entries and /help are built from it.

Each :class:`Command` row says what the user types (``/name ARGS``), the key that runs it, how the
footer, the command palette and the help overlay name it, and what it does: ``action`` is the chat
screen's Textual action (run by its key and its palette entries), ``run`` what ``/name ARGS`` does
(by default the same action). Plugin tasks join the table as slash commands when the plugins are
loaded; a task whose name a built-in command already has is left out and reported once.

This module is on the path to the app's first frame (the screen's bindings are built from it), so it
imports no widget: handlers that show a dialog or a message get it through the chat screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from lmassist.errors import LMAssistError, describe
from lmassist.tui import sources
from lmassist.tui.slash import split_args

if TYPE_CHECKING:
    from lmassist.tui.screens.chat import ChatScreen

Handler = Callable[["ChatScreen", str], "Awaitable[None] | None"]


@dataclass(frozen=True)
class PaletteEntry:
    """One line of the command palette; ``action`` is the command's own unless given."""

    title: str
    help: str
    action: str = ""


@dataclass(frozen=True)
class Command:
    """One command of the app. ``usage`` empty: no slash word (a key or palette entry only)."""

    name: str
    usage: str = ""
    summary: str = ""
    action: str = ""  # the chat screen's action its key and palette entries run ("app." for the app's)
    run: Handler | None = None  # what "/name ARGS" does; None: run ``action``
    key: str = ""  # a Textual key ("ctrl+n"); shown in the footer with ``label``, in /help with ``key_help``
    label: str = ""
    key_help: str = ""  # empty: the summary
    bind: bool = True  # False: the key is handled elsewhere (the message box, Textual's palette)
    palette: tuple[PaletteEntry, ...] = ()
    takes_path: bool = False
    arg_words: str = ""  # the first argument completes against these names ("templates", "collections")
    task: Any = field(default=None, compare=False)  # the plugin task behind a task command

    @property
    def is_slash(self) -> bool:
        return bool(self.usage)

    @property
    def key_display(self) -> str:
        return key_display(self.key)

    def binding(self) -> Binding:
        return Binding(self.key, self.action.removeprefix("app."), self.label, priority=self.action.startswith("app."))


def key_display(key: str) -> str:
    """``ctrl+n`` → ``Ctrl+N``, ``f4`` → ``F4``, ``escape`` → ``Esc``; ``a / b`` shows both."""
    names = {"escape": "Esc", "enter": "Enter", "tab": "Tab", "delete": "Del", "right": "→"}

    def one(k: str) -> str:
        return "+".join(names.get(p, p.upper() if len(p) <= 3 else p.capitalize()) for p in k.split("+"))

    return " / ".join(one(k.strip()) for k in key.split("/"))


# -- what the slash commands with arguments do -------------------------------------------------------


async def _help(chat: ChatScreen, args: str) -> None:
    await chat.conversation.show_info("# Help\n\n" + help_markdown(chat.commands()))


def _model(chat: ChatScreen, args: str) -> None:
    if args.strip():
        chat.switch_model(args.strip())
    else:
        chat.action_switch_model()


def _models(chat: ChatScreen, args: str) -> None:
    chat.run_worker(partial(_list_models, chat), thread=True, group="models")


def _list_models(chat: ChatScreen) -> None:
    """Every model the backends know, as a table in the chat (in a worker: plugins may ask servers)."""
    try:
        specs = chat.host.registry().models()
    except Exception as e:  # noqa: BLE001 - shown, never a crash
        chat.app.call_from_thread(chat.conversation.show_error, describe(e))
        return
    lines = ["| model | installed | note |", "|---|---|---|"]
    for s in specs:
        mark = " (current)" if s.full_name == chat.model_name else ""
        lines.append(f"| `{cell(s.full_name)}`{mark} | {'yes' if s.installed else 'no'} | {cell(s.description)} |")
    chat.app.call_from_thread(chat.conversation.show_info, "\n".join(lines) + "\n\n`/model NAME` switches.")


async def _system(chat: ChatScreen, args: str) -> None:
    chat.session.set_settings({**chat.session.settings, "system": args})
    await chat.conversation.show_info(f"System prompt {'set' if args else 'cleared'} for this chat.")


async def _set(chat: ChatScreen, args: str) -> None:
    words = split_args(args)
    if len(words) != 2:
        raise LMAssistError("usage: /set KEY VALUE (keys: max_new_tokens, temperature, top_p, top_k, "
                            "repetition_penalty, seed)")
    chat.session.set_option(words[0], words[1])
    await chat.conversation.show_info(f"`{words[0]}` = `{words[1]}` for this chat.")


async def _rename(chat: ChatScreen, args: str) -> None:
    conv = chat.session.conversation
    if conv is None:
        raise LMAssistError("nothing to rename yet: send a message first")
    chat.open_store().rename(conv.id, args)
    chat.history_changed(conv.id)
    await chat.conversation.show_info(f"Renamed to **{chat.session.conversation.display_title}**.")


async def _export(chat: ChatScreen, args: str) -> None:
    words = split_args(args)
    fmt = (words[0] if words else "md").lower()
    path = chat.export_current(fmt, words[1] if len(words) > 1 else None)
    await chat.conversation.show_info(f"Exported to `{path}`.")


BUILTINS: tuple[Command, ...] = (
    Command("help", "/help", "show commands and keys", "help", _help, "f1", "Help", "this help",
            palette=(PaletteEntry("Help", "Keys and slash commands"),)),
    Command("model", "/model [NAME]", "switch model (no name: pick from a list)", "switch_model", _model,
            "ctrl+t", "Model", "switch model",
            palette=(PaletteEntry("Switch model", "Pick the backend and model for the next replies"),)),
    Command("models", "/models", "list the models you can switch to", run=_models),
    Command("new", "/new", "start a new chat", "new_chat", key="ctrl+n", label="New", key_help="new chat",
            palette=(PaletteEntry("New chat", "Start a new conversation"),)),
    Command("system", "/system [TEXT]", "set (or clear) this chat's system prompt", run=_system),
    Command("set", "/set KEY VALUE", "set a generation option (temperature, max_new_tokens, ...)", run=_set),
    Command("settings", "/settings", "edit system prompt and options", "settings", key="f3", label="Settings",
            key_help="settings of this chat: system prompt and generation options",
            palette=(PaletteEntry("Settings", "System prompt and generation options of this chat"),)),
    Command("regen", "/regen", "regenerate the last reply", "regenerate", key="ctrl+r", label="Regen",
            palette=(PaletteEntry("Regenerate reply", "Ask again for the last reply"),)),
    Command("edit", "/edit", "edit and resend your last message", "edit_last", key="ctrl+g", label="Edit",
            palette=(PaletteEntry("Edit last message", "Change and resend your last message"),)),
    Command("copy", "/copy", "copy the last reply to the clipboard", "copy_reply", key="f4", label="Copy",
            palette=(PaletteEntry("Copy reply", "Copy the last reply to the clipboard"),)),
    Command("rename", "/rename TITLE", "rename this chat", run=_rename),
    Command("export", "/export md|json [PATH]", "save this chat as Markdown or JSON", run=_export, takes_path=True,
            palette=(PaletteEntry("Export chat as Markdown", "Write this conversation to a .md file", "export('md')"),
                     PaletteEntry("Export chat as JSON", "Write this conversation, with stats, to a .json file",
                                  "export('json')"))),
    Command("attach", "/attach [PATH...]", "attach files, folders or globs; the model reads them from the next "
            "message on (no path: pick a file)", "pick_file", sources.attach, "ctrl+o", "File",
            "attach a file picked from a tree (or add its path to a /task being typed)", takes_path=True,
            palette=(PaletteEntry("Attach a file…", "Pick a file; the model reads it from the next message on"),)),
    Command("docs", "/docs NAME|off", "answer the rest of this chat from an indexed folder (lmassist docs add), "
            "citing path:line", run=sources.docs, arg_words="collections",
            palette=(PaletteEntry("Answer from a folder index…", "Type /docs NAME: answers cite the folder's files",
                                  "start_command('docs')"),)),
    Command("template", "/template NAME", "apply a saved template: system prompt, options, model, files",
            run=sources.template, arg_words="templates",
            palette=(PaletteEntry("Apply a template…", "Type /template NAME (Tab completes the names)",
                                  "start_command('template')"),)),
    Command("plugins", "/plugins", "installed plugins and their errors", "app.show_plugins",
            palette=(PaletteEntry("Plugins", "Installed plugins, backends, tasks and their errors"),)),
    Command("quit", "/quit", "leave the app", "app.quit", None, "ctrl+q", "Quit", "quit"),
    # Keys without a slash word.
    Command("stop", action="cancel", key="escape", label="Stop",
            key_help="stop the reply (the partial text is kept, marked interrupted); close dialogs"),
    Command("history", action="toggle_history", key="ctrl+s", label="History",
            key_help="history: search, resume, rename (F2), delete (Del), export (F6 md, F7 json)",
            palette=(PaletteEntry("History", "Search, resume, rename, delete, export past chats"),)),
    Command("send", key="enter", key_help="send the message", bind=False),
    Command("newline", key="ctrl+j / shift+enter", key_help="new line in the message", bind=False),
    Command("complete", key="tab / right", key_help="accept the completion shown in grey (commands, paths)",
            bind=False),
    Command("palette", key="ctrl+p", key_help="command palette: every action, every model, every task", bind=False),
)

# The order each face lists them in, as each was laid out for its reader before the table existed.
FOOTER = ("stop", "new", "history", "regen", "edit", "copy", "model", "attach", "settings", "help")
HELP_KEYS = ("send", "newline", "complete", "stop", "regen", "edit", "copy", "model", "new", "history", "attach",
             "settings", "palette", "help", "quit")
PALETTE = ("new", "model", "attach", "docs", "template", "export", "history", "regen", "edit", "copy", "settings",
           "plugins", "help")
PALETTE_AFTER_MODEL = "model"  # the models and tasks follow this entry in the palette

BY_NAME: dict[str, Command] = {c.name: c for c in BUILTINS}


def screen_bindings() -> list[Binding]:
    """The chat screen's key bindings (the footer shows them in this order)."""
    return [BY_NAME[name].binding() for name in FOOTER]


def app_bindings() -> list[Binding]:
    """Keys that work over every screen (priority bindings of the app)."""
    return [c.binding() for c in BUILTINS if c.key and c.bind and c.action.startswith("app.")]


def help_keys() -> list[tuple[str, str]]:
    return [(BY_NAME[name].key_display, BY_NAME[name].key_help or BY_NAME[name].summary) for name in HELP_KEYS]


def cell(text: str) -> str:
    """Text for a Markdown table cell: a ``|`` (as in ``/export md|json``) would end the cell, and a
    line break the row, so the one is escaped (which GFM honours inside code spans too) and the
    other flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def help_markdown(commands: list[Command]) -> str:
    """The keys of the command table, then the slash commands given (the built-in ones and the tasks)."""
    lines = ["## Keys", "", "| key | does |", "|---|---|"]
    lines += [f"| `{cell(k)}` | {cell(d)} |" for k, d in help_keys()]
    lines += ["", "## Slash commands", "", "| command | does |", "|---|---|"]
    lines += [f"| `{cell(c.usage)}` | {cell(c.summary)} |" for c in commands]
    return "\n".join(lines) + "\n"


def task_command(task: Any) -> Command:
    """A plugin task as a slash command; its usage line says whether it takes a path."""
    name = str(task.name)
    usage = str(task.slash_usage or f"/{name} ARGS")
    return Command(name, usage, str(task.summary or ""), takes_path=any(w in usage.upper() for w in ("PATH", "FILE")),
                   task=task)


class CommandTable:
    """The built-in commands, then one per plugin task (known once the plugins are loaded)."""

    def __init__(self, builtins: Iterable[Command] = BUILTINS) -> None:
        self.builtins = tuple(builtins)
        self.tasks: dict[str, Any] = {}
        self.hidden: list[str] = []  # task names a built-in command already has

    def set_tasks(self, tasks: dict[str, Any]) -> list[str]:
        """Take the registry's tasks; returns one line for each left out because its name is taken."""
        taken = {c.name for c in self.builtins if c.is_slash}
        self.tasks = {name: task for name, task in tasks.items() if name not in taken}
        hidden = sorted(name for name in tasks if name in taken)
        new = [name for name in hidden if name not in self.hidden]
        self.hidden = hidden
        return [f"the task /{name} is not available: the app's own /{name} command has that name" for name in new]

    def slash_commands(self) -> list[Command]:
        return [c for c in self.builtins if c.is_slash] + [task_command(t) for t in self.tasks.values()]

    def get(self, name: str) -> Command | None:
        found = next((c for c in self.builtins if c.is_slash and c.name == name), None)
        if found is None and name in self.tasks:
            found = task_command(self.tasks[name])
        return found

    def palette(self) -> Iterator[tuple[str, PaletteEntry]]:
        """The palette's built-in entries as (command name, entry), in the palette's order."""
        by_name = {c.name: c for c in self.builtins}
        for name in PALETTE:
            command = by_name[name]
            for entry in command.palette:
                text = f"{entry.help} ({command.key_display})" if command.key and command.bind else entry.help
                yield name, PaletteEntry(entry.title, text, entry.action or command.action)
