"""Installed plugins, what each provides, and the ones that failed (with why), in one table."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from lmassist.install_hints import backend_install_hint


def plugins_markdown(manager: Any, tasks: dict[str, Any], backends: dict[str, Any]) -> str:
    lines = ["# Plugins", "", "| plugin | version | hooks | status |", "|---|---|---|---|"]
    for info in sorted(manager.info.values(), key=lambda i: (not i.builtin, i.name)):
        status = f"**failed**: {info.error}" if info.error else ("built-in" if info.builtin else "ok")
        lines.append(f"| `{info.name}` | {info.version or '-'} | {', '.join(info.hooks) or '-'} | {status} |")
    lines += ["", "## Backends", ""]
    for name, backend in sorted(backends.items()):
        try:
            reason = backend.unavailable_reason()
        except Exception as e:  # noqa: BLE001 - a broken backend is listed, not fatal
            reason = str(e)
        hint = backend_install_hint(backend.name, backend.install_hint) if reason else ""
        state = f"unavailable: {reason}" + (f" (install: `{hint}`)" if hint else "") if reason else "available"
        lines.append(f"- `{name}`: {state}")
    lines += ["", "## Tasks", ""]
    lines += [f"- `/{name}`: {t.summary}" for name, t in sorted(tasks.items())] or ["- none"]
    if manager.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in manager.errors]
    return "\n".join(lines) + "\n"


class PluginsScreen(ModalScreen[None]):
    CSS_PATH = "dialogs.tcss"  # read when the first dialog opens, not before the first frame
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -tall", id="plugins"):
            yield Markdown(self.markdown)
