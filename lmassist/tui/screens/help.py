"""The help overlay: every key and every slash command, task plugins included, from the command table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from lmassist.tui.commands import Command, help_keys


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


class HelpScreen(ModalScreen[None]):
    """Shown over the chat; any of Esc, F1 or q closes it."""

    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape,f1,q", "dismiss(None)", "Close")]

    def __init__(self, commands: list[Command]) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -tall", id="help"):
            yield Markdown("# lmassist help\n\n" + help_markdown(self.commands))
