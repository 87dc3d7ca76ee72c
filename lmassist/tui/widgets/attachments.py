"""Attached files in the conversation: one compact chip per file (name, size, tokens), and the
one-line notes that go with them (files skipped in a folder, attachments too long to show whole).

Styled in ``lmassist.tcss``. Imported when the first attachment is shown, not before the first frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class AttachmentChip(Static):
    """``notes.md · 4.2 KB · ~1,050 tokens`` (:func:`lmassist.attachments.chip`)."""

    def __init__(self, label: str) -> None:
        super().__init__(Text(label), classes="attachment-chip", markup=False)
        self.label = label


class AttachmentChips(Vertical):
    """The files one ``/attach`` (or the picker, or a template) added, with ``notes`` under them."""

    def __init__(self, labels: Sequence[str], notes: Sequence[str] = ()) -> None:
        super().__init__(classes="attachments")
        self.labels = list(labels)
        self.notes = list(notes)

    def compose(self) -> ComposeResult:
        yield Static(Text("attached", style="bold"), classes="attachments-header")
        for label in self.labels:
            yield AttachmentChip(label)
        for note in self.notes:
            yield Static(Text(note), classes="attachment-note")


def attached_view(chips: Sequence[str], notes: Sequence[str]) -> Static | AttachmentChips:
    """What one ``/attach`` shows: its chips and notes, or one line saying why nothing was attached."""
    if chips:
        return AttachmentChips(chips, notes)
    why = "; ".join(notes) if notes else "no files found"
    return Static(Text(f"Nothing new attached: {why}."), classes="attachments attachment-note")


def with_chips(views: Sequence[Any]) -> list[Any]:
    """The views of a resumed chat, each message that attached files after the chips of those files."""
    out: list[Any] = []
    for view in views:
        chips = view.turn.meta.get("attachments")
        if chips:
            out.append(AttachmentChips(chips))
        out.append(view)
    return out
