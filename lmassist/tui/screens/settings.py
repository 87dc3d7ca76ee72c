"""Per-conversation settings: the system prompt and the generation options, saved with the chat."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea

from lmassist.generation import GenerationOptions, LMAssistError
from lmassist.tui.session import OPTION_FIELDS


class SettingsScreen(ModalScreen[dict[str, Any] | None]):
    """Returns ``{"system": str, "options": {...}}`` on Save, ``None`` on Cancel/Esc."""

    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        current = GenerationOptions().replace(**(self.settings.get("options") or {}))
        with VerticalScroll(classes="dialog -tall", id="settings"):
            yield Label("System prompt (this chat only)", classes="dialog-title")
            yield TextArea(str(self.settings.get("system") or ""), id="system-prompt", soft_wrap=True)
            for name in OPTION_FIELDS:
                value = getattr(current, name)
                with Horizontal(classes="setting-row"):
                    yield Label(name, classes="setting-label")
                    yield Input("" if value is None else str(value), id=f"opt-{name}")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def action_save(self) -> None:
        pairs = [(name, self.query_one(f"#opt-{name}", Input).value.strip()) for name in OPTION_FIELDS]
        try:
            parsed = GenerationOptions.from_pairs([(k, v) for k, v in pairs if v or k == "seed"])
        except LMAssistError as e:
            self.notify(str(e), severity="error")
            return
        defaults = GenerationOptions()
        options = {n: getattr(parsed, n) for n in OPTION_FIELDS if getattr(parsed, n) != getattr(defaults, n)}
        system = self.query_one("#system-prompt", TextArea).text.strip()
        self.dismiss({"system": system, "options": options})

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)
