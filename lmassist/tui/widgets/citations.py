"""The sources under a ``/docs`` answer: one link per citation (``path:line``), opened in the app.

A citation is a focusable :class:`~textual.widgets.Link`: a click, or Enter when it has the focus,
posts :class:`CitationLink.Opened` (the chat screen shows the passage) instead of asking the
terminal to open a URL. Imported with the message views, after the first frame.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.message import Message
from textual.widgets import Link, Static


def citation_text(citation: dict[str, Any]) -> str:
    """``notes/budget.md:12``, the form ``ask --docs`` prints and editors open."""
    return f"{citation['path']}:{citation['line']}"


class CitationLink(Link):
    """One ``path:line``; opens the passage rather than a browser."""

    class Opened(Message):
        """The user asked to see a cited passage of collection ``docs``."""

        def __init__(self, docs: str, citation: dict[str, Any]) -> None:
            super().__init__()
            self.docs = docs
            self.citation = citation

    def __init__(self, docs: str, citation: dict[str, Any]) -> None:
        super().__init__(citation_text(citation), url=citation_text(citation),
                         tooltip="show the passage (Enter or click)", classes="citation")
        self.docs = docs
        self.citation = citation

    def action_open_link(self) -> None:
        self.post_message(self.Opened(self.docs, self.citation))


class Citations(HorizontalGroup):
    """``sources: a.md:3  b.md:40`` under an answer."""

    def __init__(self, docs: str, citations: list[dict[str, Any]]) -> None:
        super().__init__(classes="citations")
        self.docs = docs
        self.citations = citations

    def compose(self) -> ComposeResult:
        yield Static(f"sources ({self.docs}):", classes="citations-label")
        for citation in self.citations:
            yield CitationLink(self.docs, citation)
