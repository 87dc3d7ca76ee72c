"""The conversation: its message views, and the workers that write replies and run tasks into it.

Threading rules, which keep the UI responsive while a reply streams:

* replies and tasks run in thread workers (``@work(thread=True)``);
* a worker never touches a widget: it posts messages (``ReplyChunk``, ``ReplyDone``...), which are
  thread-safe, or uses ``call_from_thread`` when it needs an answer back (the reply's view);
* the history is written by the worker (the store is thread-safe): the user's message before the
  model is even asked, the reply as a pending row at once, its text about once a second while it
  streams, and its final text, status and stats when it ends or is cancelled.

This widget is part of the first frame, so the message views (which import Markdown) and the
generation contract (``CancelToken``) are imported in the methods that need them, after it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from lmassist.errors import LMAssistError, describe
from lmassist.tui.session import Attached, ChatSession, ModelHost, Turn
from lmassist.tui.widgets.chunk_buffer import ChunkBuffer
from lmassist.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from types import ModuleType

    from lmassist.generation import CancelToken
    from lmassist.tui.widgets.message import MessageView

SAVE_EVERY_S = 1.0  # how often a streaming reply's text is written to the history
MAX_SHOWN = 40  # messages kept mounted: Textual lays out every one on each change (the rest stay in the history)
WELCOME = (
    "Type a message and press Enter (Ctrl+J for a new line). Esc stops a reply.\n"
    "/help lists commands; tasks run on files: /summarize PATH, /translate PATH LANG, ...\n"
    "Ctrl+P opens the command palette, Ctrl+S the history, F1 the keys."
)


def _messages() -> ModuleType:
    """The message views, imported when the first is shown (they bring Markdown, which the first frame does not need)."""
    from lmassist.tui.widgets import message

    return message


def _attachments() -> ModuleType:
    from lmassist.tui.widgets import attachments

    return attachments


class Conversation(VerticalScroll):
    """The chat log of the current conversation; ``session`` is what it says, the views how it looks."""

    class ReplyChunk(Message):
        """New text in ``buffer`` for ``view``."""

        def __init__(self, view: MessageView, buffer: ChunkBuffer) -> None:
            super().__init__()
            self.view = view
            self.buffer = buffer

    class ReplyDone(Message):
        """A reply or a task ended: complete, interrupted, or failed with ``error`` (bubbles to the screen)."""

        def __init__(self, view: MessageView | None, turn: Turn | None, stats: dict[str, Any] | None,
                     error: str | None = None, context_length: int | None = None) -> None:
            super().__init__()
            self.view = view
            self.turn = turn
            self.stats = stats
            self.error = error
            self.context_length = context_length

    class TaskProgress(Message):
        def __init__(self, view: MessageView, done: int, total: int | None) -> None:
            super().__init__()
            self.view = view
            self.done = done
            self.total = total

    def __init__(self, host: ModelHost, open_store: Callable[[], Any], status: StatusBar,
                 model_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.open_store = open_store
        self.status = status
        self._session: ChatSession | None = None
        self.model_name = model_name  # what the user asked for; the full name once loaded
        self.model_ready = False
        self.busy = False
        self.cancel_token: CancelToken | None = None
        # Set while no reply or task thread runs: the app waits on it before the model is freed,
        # since freeing a model a worker still generates with crashes the process (SIGSEGV).
        self.work_idle = threading.Event()
        self.work_idle.set()
        self.hidden_count = 0

    def compose(self) -> Any:
        yield Static(WELCOME, id="welcome")

    @property
    def session(self) -> ChatSession:
        """The conversation's rows; made on first use, opening the history then if it is not open yet."""
        if self._session is None:
            self._session = ChatSession(self.open_store())
        return self._session

    # -- showing messages ------------------------------------------------------------------------

    async def _mount(self, widget: Any) -> None:
        for welcome in self.query("#welcome"):
            await welcome.remove()
        await self.mount(widget)
        await self._trim()
        self.scroll_end(animate=False)

    async def _note_hidden(self, note: str) -> None:
        found = self.query("#hidden-note")
        if found:
            found.first(Static).update(note)
        else:
            await self.mount(Static(note, id="hidden-note"), before=0)

    async def _trim(self) -> None:
        """Keep at most ``MAX_SHOWN`` messages mounted, with a note saying how many are hidden."""
        shown = [c for c in self.children if c.id != "hidden-note"]
        extra = len(shown) - MAX_SHOWN
        if extra <= 0:
            return
        for child in shown[:extra]:
            await child.remove()
        self.hidden_count += extra
        await self._note_hidden(f"{self.hidden_count} earlier messages are not shown here; "
                                "they are in the history (Ctrl+S, /export).")

    async def add_turn(self, turn: Turn) -> MessageView:
        view = _messages().MessageView(turn)
        await self._mount(view)
        view.refresh_header()
        return view

    async def show_error(self, text: str) -> None:
        await self._mount(_messages().ErrorView(text))

    async def show_info(self, markdown: str) -> None:
        await self._mount(_messages().InfoView(markdown))

    async def show_attachments(self, attached: Attached) -> None:
        """The chips of files just attached (and the notes of what was skipped), or why none was."""
        from lmassist.tui.widgets.attachments import attached_view

        await self._mount(attached_view(attached.chips, attached.notes))

    async def show_note(self, text: str) -> None:
        """A one-line note about the reply being written (the attachments did not fit whole)."""
        from lmassist.tui.widgets.attachments import AttachmentChips

        await self._mount(AttachmentChips([], [text]))

    def views(self) -> list[MessageView]:
        return list(self.query(_messages().MessageView))

    async def remove_from(self, turn: Turn) -> None:
        """Remove the view of ``turn`` and every message shown after it."""
        found = False
        for child in list(self.children):
            if getattr(child, "turn", None) is turn:
                found = True
            if found:
                await child.remove()

    async def new(self) -> None:
        """A new chat: an empty log with the welcome text, no figures of the last reply."""
        dropped = self.session.new()
        await self.remove_children()
        self.hidden_count = 0
        await self.mount(Static(WELCOME, id="welcome"))
        self.status.tokens_per_s = self.status.ttft_s = self.status.context_used = None
        self._tell_dropped(dropped)

    def _tell_dropped(self, names: list[str]) -> None:
        """Say which attached files were left unsent with the chat left (they are not carried over)."""
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            self.notify(f"not sent, so not carried over: {shown}. Use /attach here to send "
                        f"{'it' if len(names) == 1 else 'them'} in this chat.",
                        title="attachments left behind", severity="warning")

    async def load(self, cid: str) -> bool:
        """Show a past conversation (its last ``MAX_SHOWN`` turns); False, the error shown, if it cannot be read."""
        try:
            dropped = self.session.load(cid)
        except LMAssistError as e:
            await self.show_error(str(e))
            return False
        self._tell_dropped(dropped)
        await self.remove_children()
        turns = self.session.turns
        self.hidden_count = max(0, len(turns) - MAX_SHOWN)
        views = [_messages().MessageView(turn) for turn in turns[-MAX_SHOWN:]]
        await self.mount_all(_attachments().with_chips(views))  # one mount, one layout, however long the chat
        for view in views:
            view.refresh_header()
        self.scroll_end(animate=False)
        if self.hidden_count:
            await self._note_hidden(f"{self.hidden_count} earlier messages are not shown here; "
                                    "they are in the history (/export).")
        if not turns:
            await self.mount(Static(WELCOME, id="welcome"))
        return True

    # -- replies and tasks -----------------------------------------------------------------------

    def _begin_busy(self, state: str) -> CancelToken:
        from lmassist.generation import CancelToken

        self.busy = True
        self.cancel_token = CancelToken()
        self.work_idle.clear()
        self.status.state = state if self.model_ready else "loading"
        self.status.detail = ""
        return self.cancel_token

    async def say(self, text: str, replaces: int | None = None) -> Turn | None:
        """Save and show the user's message; None (the error shown) if it could not be saved."""
        try:
            turn = self.session.add_user(text, replaces=replaces)
        except LMAssistError as e:
            await self.show_error(str(e))
            return None
        await self.add_turn(turn)
        return turn

    def start_reply(self, upto: Turn, replaces: int | None = None) -> None:
        self.generate(upto, replaces, self._begin_busy("generating"))

    async def start_task(self, task: Any, argline: str, text: str) -> None:
        """Save and show ``/task ARGS``, then run the task in a worker with progress."""
        try:
            turn = self.session.add_user(text, kind="task", meta={"task": task.name})
        except LMAssistError as e:
            await self.show_error(str(e))
            return
        await self.add_turn(turn)
        self.run_task(task, argline, self._begin_busy("running task"))

    @work(thread=True, group="reply")
    def generate(self, upto: Turn, replaces: int | None, token: CancelToken) -> None:
        """Stream a reply to the thread ending at ``upto``, saving it as it goes."""
        try:
            self._generate(upto, replaces, token)
        finally:
            self.work_idle.set()

    def _generate(self, upto: Turn, replaces: int | None, token: CancelToken) -> None:
        view = turn = None
        try:
            model = self.host.load(self.model_name)
            if token.cancelled:
                self.post_message(self.ReplyDone(None, None, None))
                return
            self.app.call_from_thread(setattr, self.status, "state", "generating")
            options = self.session.options()
            plan = self.session.plan_reply(model, upto)
            turn = self.session.begin_reply(model.info.name, replaces=replaces, options=options, cancel=token,
                                            meta=plan.meta)
            if plan.note:
                self.app.call_from_thread(self.show_note, plan.note)
            view = self.app.call_from_thread(self._mount_reply, turn)
            if plan.abstain is not None:
                self.session.finish_reply(turn, plan.abstain, "complete")
                self.post_message(self.ReplyDone(view, turn, None))
                return
            generation = model.chat(plan.messages, options, token)
            saved_at = time.monotonic()
            buffer = ChunkBuffer()
            for chunk in generation:
                if buffer.put(chunk):
                    self.post_message(self.ReplyChunk(view, buffer))
                if time.monotonic() - saved_at >= SAVE_EVERY_S:
                    self.session.save_partial(turn, generation.text)
                    saved_at = time.monotonic()
            status = "interrupted" if generation.interrupted else "complete"
            stats = generation.stats.to_dict()
            self.session.finish_reply(turn, generation.text, status, stats)
            self.post_message(self.ReplyDone(view, turn, stats, context_length=model.context_length))
        except Exception as e:  # noqa: BLE001 - a backend failure becomes a message in the chat
            self._finish_failed(turn, turn.content if turn is not None else "")
            self.post_message(self.ReplyDone(view, turn, None, error=describe(e)))

    def _finish_failed(self, turn: Turn | None, text: str) -> None:
        if turn is not None:
            try:
                self.session.finish_reply(turn, text, "error")
            except Exception:  # noqa: BLE001 - the history failing too must not hide the first error
                pass

    async def _mount_reply(self, turn: Turn) -> MessageView:
        view = await self.add_turn(turn)
        view.start_stream()
        return view

    @work(thread=True, group="reply")
    def run_task(self, task: Any, argline: str, token: CancelToken) -> None:
        try:
            self._run_task(task, argline, token)
        finally:
            self.work_idle.set()

    def _run_task(self, task: Any, argline: str, token: CancelToken) -> None:
        view = turn = None
        try:
            model = self.host.load(self.model_name)
            self.app.call_from_thread(setattr, self.status, "state", "running task")
            turn = self.session.begin_reply(model.info.name, kind="task", meta={"task": str(task.name)},
                                            cancel=token)
            view = self.app.call_from_thread(self.add_turn, turn)
            shown = view

            def progress(done: int, total: int | None = None) -> None:
                self.post_message(self.TaskProgress(shown, done, total))

            result = task.run_slash(model, argline, progress=progress, cancel=token)
            status = "interrupted" if token.cancelled else "complete"
            self.session.finish_reply(turn, str(result or ""), status)
            self.post_message(self.ReplyDone(view, turn, None))
        except Exception as e:  # noqa: BLE001 - bad input or a broken plugin: shown, never a crash
            message = describe(e)
            self._finish_failed(turn, f"error: {message}")
            self.post_message(self.ReplyDone(view, turn, None, error=message))

    @on(ReplyChunk)
    async def _on_chunk(self, event: ReplyChunk) -> None:
        event.stop()
        text = event.buffer.take()
        if text:
            await event.view.write(text)

    @on(TaskProgress)
    def _on_progress(self, event: TaskProgress) -> None:
        event.stop()
        event.view.show_progress(event.done, event.total)
        if event.total:
            self.status.detail = f"{event.done}/{event.total}"

    @on(ReplyDone)
    async def _on_done(self, event: ReplyDone) -> None:
        view, turn = event.view, event.turn
        is_task = turn is not None and turn.kind == "task"
        if view is not None and view.is_mounted:
            if turn is not None and turn.status != "error" and (is_task or not view.source):
                view.hide_progress()
                await view.set_content(turn.content)
            await view.finish()
            await view.show_citations()
            if event.error and is_task:
                await view.remove()
        if event.error:
            await self.show_error(event.error)
        self.busy = False
        self.cancel_token = None
        self.status.state = "idle" if self.model_ready else self.status.state
        self.status.detail = ""
        stats = event.stats or {}
        if stats.get("generated_tokens"):
            self.status.tokens_per_s = stats.get("tokens_per_s")
            self.status.ttft_s = stats.get("time_to_first_token_s")
            self.status.context_used = int(stats.get("prompt_tokens", 0)) + int(stats.get("generated_tokens", 0))
        if event.context_length:
            self.status.context_length = event.context_length
        self.session.refresh()

    # -- stopping --------------------------------------------------------------------------------

    def cancel(self) -> bool:
        """Esc: stop the reply being written; False when none is."""
        if not (self.busy and self.cancel_token is not None):
            return False
        self.cancel_token.cancel()
        self.status.detail = "(stopping)"
        return True

    def stop_work(self) -> bool:
        """Ask the running reply or task to stop (it keeps its partial text, marked interrupted);
        True when nothing runs any more."""
        if self.cancel_token is not None:
            self.cancel_token.cancel()
        return self.work_idle.is_set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait, without blocking the UI, until the reply or task thread has ended."""
        deadline = time.monotonic() + timeout
        # ``busy`` clears when the end of the reply has been handled (ReplyDone), so nothing is
        # left to draw into views that quitting is about to remove.
        while not (self.work_idle.is_set() and not self.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.work_idle.is_set()
