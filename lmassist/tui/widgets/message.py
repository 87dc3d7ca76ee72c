"""One message in the chat: a header (who, which model, whether it was interrupted) and its body.

Replies are Markdown. While one streams, its body is a single ``Static`` showing the text rendered
as Rich Markdown, redrawn at most every ``STREAM_INTERVAL_S``: one widget whose height changes, so
each redraw is one cheap layout. Textual's ``Markdown`` widget (a widget per block, with links,
tables and code highlighting) replaces it once, when the reply ends. Streaming into the ``Markdown``
widget itself meant a layout of every block on each append, which froze the UI while the model ran
(``lmassist bench tui`` measures that lag).

This module imports the Markdown widget (and markdown-it), so the conversation imports it only once
there is a message to show: that keeps it off the path to the first frame.
"""

from __future__ import annotations

import time
from functools import lru_cache

from markdown_it import MarkdownIt
from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Markdown, ProgressBar, Static

from lmassist.tui.session import Turn
from lmassist.tui.widgets.citations import Citations

STREAM_INTERVAL_S = 0.08  # at most one redraw of a streaming reply per this many seconds


@lru_cache(maxsize=1)
def shared_parser() -> MarkdownIt:
    """One parser for every reply: Textual's Markdown builds a new one on each streamed append
    otherwise, which is measurable work on the UI thread at tens of appends a second."""
    return MarkdownIt("gfm-like")


def header_text(turn: Turn) -> Text:
    """``you`` / ``assistant · llamacpp:smollm2-135m-instruct · interrupted``."""
    who = {"user": "you", "assistant": "assistant"}.get(turn.role, turn.role)
    if turn.kind == "task" and turn.role == "assistant":
        who = f"task {turn.meta.get('task') or ''}".strip()
    text = Text(who, style="bold")
    if turn.role == "assistant" and turn.model:
        text.append(" · ", style="dim").append(turn.model, style="italic")
    if turn.status not in ("complete", "pending"):
        style = "bold yellow" if turn.status == "interrupted" else "bold red"
        text.append(" · ", style="dim").append(turn.status, style=style)
    return text


class MessageView(Vertical):
    """A message; assistant replies can stream (``start_stream``/``write``/``finish``)."""

    # Here rather than in lmassist.tcss: parsed when the first message is mounted, not before the
    # app's first frame. No :last-child rules in the chat: a structural pseudo-class makes Textual
    # restyle every sibling each time a block is mounted, which grows with the reply and stalls
    # streaming.
    DEFAULT_CSS = """
    MessageView {
        height: auto;
        margin: 0 0 1 0;
        padding: 0 1;
    }
    /* Markdown already ends with its last block's bottom margin. */
    MessageView.-assistant {
        margin-bottom: 0;
    }
    MessageView .message-header {
        color: $text-muted;
        height: 1;
    }
    MessageView.-user {
        border-left: thick $primary;
        background: $boost;
    }
    MessageView.-assistant {
        border-left: thick $secondary;
    }
    MessageView.-task {
        border-left: thick $accent;
    }
    MessageView.-interrupted {
        border-left: thick $warning;
    }
    MessageView.-failed {
        border-left: thick $error;
    }
    MessageView .message-body {
        height: auto;
    }
    MessageView Markdown {
        margin: 0;
        padding: 0;
    }
    MessageView .task-progress {
        height: 1;
        margin: 0 0 0 0;
    }
    """

    def __init__(self, turn: Turn, **kwargs: object) -> None:
        classes = f"message -{turn.role} -{turn.kind}"
        super().__init__(classes=classes, **kwargs)  # type: ignore[arg-type]
        self.turn = turn
        self._streaming = False
        self._text = ""  # the streamed text so far (what the view shows, or will at the next redraw)
        self._drawn_at = 0.0
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.turn), classes="message-header")
        if self.turn.role == "user":
            yield Static(Text(self.turn.content), classes="message-body")
        else:
            yield Markdown(self.turn.content, classes="message-body", parser_factory=shared_parser)
            if self.turn.meta.get("citations") and self.turn.status != "pending":
                yield Citations(str(self.turn.meta.get("docs") or ""), list(self.turn.meta["citations"]))

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    @property
    def source(self) -> str:
        """The text of the body: streamed so far, or the final Markdown."""
        if self._streaming:
            return self._text
        found = self.query(Markdown)
        return found.first().source if found else self.turn.content

    def refresh_header(self) -> None:
        self.query_one(".message-header", Static).update(header_text(self.turn))
        self.set_class(self.turn.status == "interrupted", "-interrupted")
        self.set_class(self.turn.status == "error", "-failed")

    def start_stream(self) -> None:
        """Swap the (empty) Markdown body for the lightweight streaming one."""
        if self._streaming:
            return
        self._streaming = True
        found = self.query(Markdown)
        self._text = found.first().source if found else ""
        for body in found:
            body.remove()
        self.mount(Static(self._renderable(), classes="message-body -streaming"))

    def _renderable(self) -> RichMarkdown | Text:
        return RichMarkdown(self._text) if self._text.strip() else Text("…", style="dim")

    def _draw(self) -> None:
        self._timer = None
        if not self._streaming:
            return
        self._drawn_at = time.monotonic()
        for body in self.query(".-streaming").results(Static):
            body.update(self._renderable())

    async def write(self, fragment: str) -> None:
        """Add streamed text; it is drawn now, or with the next redraw if one was just done."""
        if not self._streaming:
            self.start_stream()
        self._text += fragment
        if self._timer is not None:
            return
        wait = self._drawn_at + STREAM_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._draw()
        else:
            self._timer = self.set_timer(wait, self._draw)

    async def finish(self) -> None:
        """Show the final text as full Markdown, then redraw the header with the final status."""
        if self._streaming:
            self._streaming = False
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            text = self._text
            await self.query(".-streaming").remove()
            await self.mount(Markdown(text, classes="message-body", parser_factory=shared_parser))
        self.refresh_header()

    async def show_citations(self) -> None:
        """The sources of a ``/docs`` answer under it, once it is written (kept across resumes)."""
        citations = self.turn.meta.get("citations")
        if citations and not self.query(Citations) and self.turn.status != "error":
            await self.mount(Citations(str(self.turn.meta.get("docs") or ""), list(citations)))

    async def set_content(self, markdown: str) -> None:
        if self._streaming:
            self._text = markdown
            await self.finish()
            return
        await self.markdown.update(markdown)

    def show_progress(self, done: int, total: int | None) -> None:
        """A task's progress over its chunks, under the header."""
        bars = self.query(ProgressBar)
        if not bars:
            bar = ProgressBar(total=total, show_eta=False, classes="task-progress")
            self.mount(bar, after=0)
        else:
            bar = bars.first()
        bar.update(total=total, progress=done)

    def hide_progress(self) -> None:
        for bar in self.query(ProgressBar):
            bar.remove()


class ErrorView(Static):
    """An error in the chat, where the user was looking, rather than a crash or a lost toast."""

    DEFAULT_CSS = """
    ErrorView {
        height: auto;
        margin: 0 0 1 0;
        padding: 0 1;
        border-left: thick $error;
        color: $text-error;
        background: $error 10%;
    }
    """

    def __init__(self, message: str) -> None:
        super().__init__(Text.assemble(("error: ", "bold red"), message), classes="message -error")
        self.message = message


class InfoView(Markdown):
    """Help, lists and other answers from the app itself (not the model)."""

    DEFAULT_CSS = """
    InfoView {
        height: auto;
        margin: 0 0 1 0;
        padding: 0 1;
        border-left: thick $foreground 30%;
        color: $text-muted;
    }
    """

    def __init__(self, markdown: str) -> None:
        super().__init__(markdown, classes="message -info", parser_factory=shared_parser)
