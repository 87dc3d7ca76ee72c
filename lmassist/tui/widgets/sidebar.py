"""The history sidebar: past conversations, full-text search over all of them, and what to do with one.

Search runs as you type (the store's FTS5 index answers in milliseconds); an empty search lists the
most recent conversations. The sidebar renames (F2), deletes (Del) and exports (F6, F7) the
conversation it highlights itself; it posts ``Selected`` to resume one and ``Changed`` after a
rename or a delete, so the chat screen can follow when that was the open conversation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from lmassist.errors import LMAssistError
from lmassist.tui.screens.dialogs import Confirm, TextPrompt

MARK_ON, MARK_OFF = "\x01", "\x02"


def snippet_text(snippet: str) -> Text:
    """A search snippet with the matched words in bold (the store wraps them in our markers)."""
    text = Text()
    bold = False
    for part in snippet.replace(MARK_OFF, MARK_ON).split(MARK_ON):
        text.append(" ".join(part.split("\n")), style="bold reverse" if bold else "")
        bold = not bold
    return text


def describe(conv: Any) -> str:
    """The line under a conversation's title: when it was last used and how long it is."""
    return f"{conv.updated.astimezone():%Y-%m-%d %H:%M} · {conv.message_count} msgs"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chat"


def export_conversation(store: Any, cid: str, fmt: str, path: str | None = None) -> Path:
    """Write a conversation to a file (default: a name from its title, in the current folder)."""
    if fmt not in ("md", "json"):
        raise LMAssistError(f"unknown export format {fmt!r}; use md or json")
    text = store.export(cid, fmt)
    if path is None:
        conv = store.get(cid)
        target = Path.cwd() / f"lmassist-{_slug(conv.display_title)}-{conv.id[:8]}.{fmt}"
    else:
        target = Path(path).expanduser()
    if target.is_dir():
        raise LMAssistError(f"{target} is a folder; give a file name")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise LMAssistError(f"cannot write {target}: {e.strerror or e}") from None
    return target


class HistorySidebar(Vertical):
    """Conversations, newest first, or search hits while the search box has text."""

    # Here rather than in lmassist.tcss: parsed when the sidebar first opens, not before the first frame.
    DEFAULT_CSS = """
    HistorySidebar {
        display: none;
        width: 40;
        border-right: vkey $foreground 20%;
    }
    HistorySidebar.-visible {
        display: block;
    }
    HistorySidebar .sidebar-title {
        text-style: bold;
        padding: 0 1;
    }
    HistorySidebar #history-list {
        height: 1fr;
        border: none;
    }
    """

    BINDINGS = [
        Binding("f2", "rename", "Rename"),
        Binding("delete", "delete", "Delete"),
        Binding("f6", "export('md')", "Export md"),
        Binding("f7", "export('json')", "Export json"),
    ]

    class Selected(Message):
        """Conversation ``cid`` was picked: resume it."""

        def __init__(self, cid: str) -> None:
            super().__init__()
            self.cid = cid

    class Changed(Message):
        """Conversation ``cid`` was renamed, or ``deleted``."""

        def __init__(self, cid: str, deleted: bool = False) -> None:
            super().__init__()
            self.cid = cid
            self.deleted = deleted

    def __init__(self, store: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def compose(self) -> ComposeResult:
        yield Static("History", classes="sidebar-title")
        yield Input(placeholder="Search all chats…", id="history-search")
        yield OptionList(id="history-list")

    def on_mount(self) -> None:
        self.reload()

    @property
    def query_text(self) -> str:
        return self.query_one("#history-search", Input).value.strip()

    def reload(self) -> None:
        """List conversations, or the hits for the current search."""
        options: list[Option] = []
        if self.query_text:
            try:
                hits = self.store.search(self.query_text, limit=50, highlight=(MARK_ON, MARK_OFF))
            except Exception as e:  # noqa: BLE001 - a bad query is shown, not raised
                self.app.notify(str(e), severity="error")
                hits = []
            seen: set[str] = set()
            for hit in hits:
                if hit.conversation_id in seen:
                    continue
                seen.add(hit.conversation_id)
                label = Text(hit.conversation_title or "Untitled conversation", style="bold")
                label.append("\n").append_text(snippet_text(hit.snippet))
                options.append(Option(label, id=hit.conversation_id))
            if not options:
                options.append(Option(Text("no matches", style="dim"), id="-", disabled=True))
        else:
            for conv in self.store.conversations(limit=200):
                label = Text(conv.display_title, style="bold")
                label.append("\n" + describe(conv), style="dim")
                options.append(Option(label, id=conv.id))
        option_list = self.query_one("#history-list", OptionList)
        option_list.clear_options()
        option_list.add_options(options)

    @on(Input.Changed, "#history-search")
    def _search(self) -> None:
        self.reload()

    @on(Input.Submitted, "#history-search")
    def _to_list(self) -> None:
        option_list = self.query_one("#history-list", OptionList)
        option_list.focus()
        if option_list.option_count:
            option_list.highlighted = 0

    @on(OptionList.OptionSelected, "#history-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id != "-":
            self.post_message(self.Selected(event.option.id))

    def _current(self) -> str | None:
        option_list = self.query_one("#history-list", OptionList)
        if option_list.highlighted is None:
            return None
        option = option_list.get_option_at_index(option_list.highlighted)
        return option.id if option.id != "-" else None

    def _picked(self) -> Any:
        """The highlighted conversation (None, or the error notified, if there is none)."""
        cid = self._current()
        if not cid:
            return None
        try:
            return self.store.get(cid)
        except LMAssistError as e:
            self.app.notify(str(e), severity="error")
            return None

    def action_rename(self) -> None:
        conv = self._picked()
        if conv is not None:
            self.app.push_screen(TextPrompt("Rename conversation", conv.title or ""),
                                 lambda title: self._rename(conv, title))

    def _rename(self, conv: Any, title: str | None) -> None:
        if not title:
            return
        try:
            self.store.rename(conv.id, title)
        except LMAssistError as e:
            self.app.notify(str(e), severity="error")
            return
        self.post_message(self.Changed(conv.id))
        self.reload()

    def action_delete(self) -> None:
        conv = self._picked()
        if conv is not None:
            self.app.push_screen(Confirm(f"Delete {conv.display_title!r} and its {conv.message_count} messages?"),
                                 lambda yes: self._delete(conv, yes))

    def _delete(self, conv: Any, yes: bool | None) -> None:
        if yes:
            self.store.delete(conv.id)
            self.post_message(self.Changed(conv.id, deleted=True))
            self.reload()
            self.app.notify(f"deleted {conv.display_title!r}")

    def action_export(self, fmt: str) -> None:
        cid = self._current()
        if not cid:
            return
        try:
            target = export_conversation(self.store, cid, fmt)
        except LMAssistError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify(f"exported to {target}")
