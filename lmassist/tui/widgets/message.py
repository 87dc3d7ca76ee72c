"""One message in the chat: a header (who, which model, whether it was interrupted) and its body.

Replies are Markdown and stream into place through Textual's ``MarkdownStream``, which merges
fragments when they arrive faster than the widget can render. This module imports the Markdown
widget (and markdown-it), so the chat screen imports it only once there is a message to show:
that keeps it off the path to the first frame.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, ProgressBar, Static
from textual.widgets.markdown import MarkdownStream

from lmassist.tui.session import Turn


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

    def __init__(self, turn: Turn, **kwargs: object) -> None:
        classes = f"message -{turn.role} -{turn.kind}"
        super().__init__(classes=classes, **kwargs)  # type: ignore[arg-type]
        self.turn = turn
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.turn), classes="message-header")
        if self.turn.role == "user":
            yield Static(Text(self.turn.content), classes="message-body")
        else:
            yield Markdown(self.turn.content, classes="message-body", parser_factory=shared_parser)

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    def refresh_header(self) -> None:
        self.query_one(".message-header", Static).update(header_text(self.turn))
        self.set_class(self.turn.status == "interrupted", "-interrupted")
        self.set_class(self.turn.status == "error", "-failed")

    def start_stream(self) -> None:
        self._stream = Markdown.get_stream(self.markdown)

    async def write(self, fragment: str) -> None:
        if self._stream is None:
            self.start_stream()
        assert self._stream is not None
        await self._stream.write(fragment)

    async def finish(self) -> None:
        """Flush what is left of the stream, then redraw the header with the final status."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.refresh_header()

    async def set_content(self, markdown: str) -> None:
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

    def __init__(self, message: str) -> None:
        super().__init__(Text.assemble(("error: ", "bold red"), message), classes="message -error")
        self.message = message


class InfoView(Markdown):
    """Help, lists and other answers from the app itself (not the model)."""

    def __init__(self, markdown: str) -> None:
        super().__init__(markdown, classes="message -info", parser_factory=shared_parser)
