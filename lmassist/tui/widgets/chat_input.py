"""The message box: multi-line, Enter sends, Ctrl+J (or Shift+Enter) adds a line, Tab completes.

A ``TextArea`` rather than an ``Input`` because prompts are often pasted code or several
paragraphs. Completion of slash commands and paths shows as ghost text (``TextArea.suggestion``),
accepted with Tab or the right arrow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static, TextArea

from lmassist.tui.slash import complete

if TYPE_CHECKING:
    from lmassist.tui.commands import Command


class ChatInput(TextArea):
    """Where the user types; posts :class:`ChatInput.Submitted` on Enter."""

    class Submitted(Message):
        """Enter with some text in the box."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Candidates(Message):
        """The completions for what is typed now, for the hint line under the box."""

        def __init__(self, candidates: list[str]) -> None:
            super().__init__()
            self.candidates = candidates

    def __init__(self, commands: Callable[[], list[Command]] | None = None,
                 words: Callable[[str], list[str]] | None = None, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         highlight_cursor_line=False, compact=True, **kwargs)  # type: ignore[arg-type]
        self._commands = commands or (lambda: [])
        self._words = words  # a command's argument words (template names...) by kind: see slash.complete
        self._shown: list[str] = []

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(text))
            return
        if event.key in ("ctrl+j", "shift+enter", "alt+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "tab" and self.suggestion:
            event.stop()
            event.prevent_default()
            self.insert(self.suggestion)
            return
        await super()._on_key(event)

    def update_suggestion(self) -> None:
        """Ghost text for the command word or path being typed (only at the end of the text)."""
        text = self.text
        at_end = self.cursor_location == self.document.end
        suffix, found = complete(text, self._commands(), words=self._words) if at_end and text.startswith("/") else ("", [])
        self.suggestion = suffix
        if found != self._shown:
            self._shown = found
            self.post_message(self.Candidates(found))

    def clear_text(self) -> None:
        self.clear()
        self.suggestion = ""

    def start_command(self, name: str) -> None:
        """``/name `` in an empty box, for the user to add the arguments (a task picked in the palette)."""
        self.clear_text()
        self.insert(f"/{name} ")
        self.focus()

    def insert_path(self, path: str) -> None:
        """A picked file added at the end of what is typed (a slash command's argument)."""
        text = self.text
        self.move_cursor(self.document.end)
        self.insert(("" if text.endswith(" ") or not text else " ") + path)
        self.focus()

    def edit_message(self, text: str) -> None:
        """Put a sent message back in the box to be changed and resent (shown with the editing border)."""
        self.text = text
        self.move_cursor(self.document.end)
        self.add_class("-editing")
        self.focus()


class CompletionHint(Static):
    """The line under the message box that lists the completions of what is typed (hidden when none)."""

    SHOWN = 12

    def show(self, candidates: list[str]) -> None:
        shown = candidates[: self.SHOWN]
        more = f"  (+{len(candidates) - len(shown)} more)" if len(candidates) > len(shown) else ""
        self.update(Text("  ".join(shown) + more, style="dim"))
        self.set_class(bool(shown), "-visible")
