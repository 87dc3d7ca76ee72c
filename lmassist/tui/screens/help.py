"""The help overlay: every key and every slash command, task plugins included, from the command table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from lmassist.tui.commands import Command, help_markdown


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
