"""The help overlay: every key binding and every slash command, task plugins included."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from lmassist.tui.slash import SlashCommand

KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message"),
    ("Ctrl+J / Shift+Enter", "new line in the message"),
    ("Tab / →", "accept the completion shown in grey (commands, paths)"),
    ("Esc", "stop the reply (the partial text is kept, marked interrupted); close dialogs"),
    ("Ctrl+R", "regenerate the last reply"),
    ("Ctrl+G", "edit and resend your last message"),
    ("F4", "copy the last reply to the clipboard"),
    ("Ctrl+T", "switch model"),
    ("Ctrl+N", "new chat"),
    ("Ctrl+S", "history: search, resume, rename (F2), delete (Del), export (F6 md, F7 json)"),
    ("Ctrl+O", "pick a file and insert its path"),
    ("F3", "settings of this chat: system prompt and generation options"),
    ("Ctrl+P", "command palette: every action, every model, every task"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)


def cell(text: str) -> str:
    """Text for a Markdown table cell: a ``|`` (as in ``/export md|json``) would end the cell, and a
    line break the row, so the one is escaped (which GFM honours inside code spans too) and the
    other flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def help_markdown(commands: list[SlashCommand]) -> str:
    lines = ["## Keys", "", "| key | does |", "|---|---|"]
    lines += [f"| `{cell(k)}` | {cell(d)} |" for k, d in KEYS]
    lines += ["", "## Slash commands", "", "| command | does |", "|---|---|"]
    lines += [f"| `{cell(c.usage)}` | {cell(c.summary)} |" for c in commands]
    return "\n".join(lines) + "\n"


class HelpScreen(ModalScreen[None]):
    """Shown over the chat; any of Esc, F1 or q closes it."""

    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape,f1,q", "dismiss(None)", "Close")]

    def __init__(self, commands: list[SlashCommand]) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -tall", id="help"):
            yield Markdown("# lmassist help\n\n" + help_markdown(self.commands))
