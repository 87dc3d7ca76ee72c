"""Pick a file to attach (Ctrl+O), or for the slash task being typed: a directory tree from the
current folder, plus a path box.

The tree is for browsing; the box is for people who know the path, or want a folder or a glob.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Static


class FilePicker(ModalScreen[str | None]):
    """Returns the chosen path (relative to the current folder when it is inside it), or ``None``."""

    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = (root or Path.cwd()).resolve()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -tall"):
            yield Static(f"Pick a file under {self.root}  (Enter picks it, Esc cancels)", classes="dialog-title")
            yield DirectoryTree(self.root, id="file-tree")
            yield Input(placeholder="…or type a path, a folder or a glob and press Enter", id="file-path")

    def _shown(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(self._shown(event.path))

    @on(Input.Submitted, "#file-path")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
