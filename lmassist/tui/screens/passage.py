"""A cited passage in its file: the whole file, read-only, with the cited lines selected and in view.

Opened from a citation under a ``/docs`` answer. The file is read when the dialog opens (the index
keeps passages, not files, so this is the file as it is now: if it changed since it was indexed, the
title says the lines may have moved). A file that cannot be read is a one-line error in the dialog.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from lmassist.errors import LMAssistError

MAX_BYTES = 8 * 1024 * 1024  # a cited file larger than this is not shown (the index skips huge files too)


def read_passage_file(path: Path) -> str:
    """The file's text, or a one-line error (missing, a folder, too large, not UTF-8)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise LMAssistError(f"{path} is too large to show here ({path.stat().st_size // 1_000_000} MB)")
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise LMAssistError(f"{path} is gone: it was deleted or moved since it was indexed "
                            "(lmassist docs update refreshes the index)") from None
    except OSError as e:
        raise LMAssistError(f"cannot read {path}: {e.strerror or e}") from None


class PassageScreen(ModalScreen[None]):
    """``path`` with lines ``line``..``end_line`` (1-based, inclusive) selected; Esc closes."""

    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, path: Path, line: int, end_line: int | None = None, label: str = "") -> None:
        super().__init__()
        self.path = path
        self.line = max(1, int(line))
        self.end_line = max(self.line, int(end_line or line))
        self.label = label or f"{path}:{self.line}"
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        try:
            text = read_passage_file(self.path)
        except LMAssistError as e:
            self.error = str(e)
            text = None
        with Vertical(classes="dialog -tall", id="passage"):
            span = f"{self.line}" if self.end_line == self.line else f"{self.line}–{self.end_line}"
            yield Static(f"{self.label}  (lines {span}; Esc closes)", classes="dialog-title")
            if text is None:
                yield Static(f"error: {self.error}", id="passage-error")
            else:
                yield TextArea(text, read_only=True, show_line_numbers=True, soft_wrap=False, id="passage-text")

    def on_mount(self) -> None:
        found = self.query("#passage-text")
        if not found:
            return
        area = found.first(TextArea)
        last = min(self.end_line, area.document.line_count) - 1
        first = min(self.line - 1, last)
        area.selection = Selection((first, 0), (last, len(area.document.get_line(last))))
        area.focus()
        self.call_after_refresh(area.scroll_to, y=max(0, first - 3), animate=False)

    @property
    def passage(self) -> str:
        """The selected (cited) lines, as shown."""
        found = self.query("#passage-text")
        return found.first(TextArea).selected_text if found else ""
