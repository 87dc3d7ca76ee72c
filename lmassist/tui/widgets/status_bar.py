"""The status line: which model, where it runs, what the app is doing, and how fast it was.

One ``Static`` redrawn from a few reactives; cheap enough to update at every reply's end.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {"idle": "green", "loading": "yellow", "generating": "bold cyan", "running task": "bold cyan",
                "error": "bold red", "starting": "yellow"}


class StatusBar(Static):
    """``llamacpp:smollm2 · cpu · idle · docs: notes · 62.1 tok/s · TTFT 41 ms · ctx 212/8192``."""

    model: reactive[str] = reactive("")
    device: reactive[str] = reactive("")
    state: reactive[str] = reactive("starting")
    tokens_per_s: reactive[float | None] = reactive(None)
    ttft_s: reactive[float | None] = reactive(None)
    context_used: reactive[int | None] = reactive(None)
    context_length: reactive[int | None] = reactive(None)
    detail: reactive[str] = reactive("")
    docs: reactive[str] = reactive("")  # the folder index answering the chat (/docs NAME), if any

    def loading(self, name: str, switching: bool) -> None:
        """``name`` is loading; when ``switching``, the model in use answers (and is named) until then."""
        self.state = "loading"
        if switching:
            self.detail = name
        else:
            self.model = name

    def load_failed(self, current: str | None) -> None:
        """Back to the model still in use (``current``), or an error state when there is none."""
        self.state = "idle" if current else "error"
        self.detail = ""
        if current:
            self.model = current

    def loaded(self, name: str, device: str, context_length: int, busy: bool) -> None:
        self.model = name
        self.device = device
        self.context_length = context_length
        if not busy:
            self.state = "idle"
            self.detail = ""

    def render(self) -> Text:
        parts: list[Text] = []
        parts.append(Text(self.model or "no model", style="bold"))
        if self.device:
            parts.append(Text(self.device))
        state = self.state + (f" {self.detail}" if self.detail else "")
        parts.append(Text(state, style=STATE_STYLES.get(self.state, "")))
        if self.docs:
            parts.append(Text(f"docs: {self.docs}", style="bold magenta"))
        if self.tokens_per_s is not None:
            parts.append(Text(f"{self.tokens_per_s:.1f} tok/s"))
        if self.ttft_s is not None:
            parts.append(Text(f"TTFT {self.ttft_s * 1000:.0f} ms"))
        if self.context_length:
            used = self.context_used or 0
            parts.append(Text(f"ctx {used}/{self.context_length}"))
        return Text(" · ", style="dim").join(parts)
