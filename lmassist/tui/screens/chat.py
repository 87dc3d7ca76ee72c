"""The chat screen: the conversation, the message box, the status bar and the history sidebar.

Threading rules, which keep the UI responsive while a reply streams:

* the model loads, generates and runs tasks in thread workers (``@work(thread=True)``);
* a worker never touches a widget: it posts messages (``ReplyChunk``, ``ReplyDone``...), which are
  thread-safe, or uses ``call_from_thread`` when it needs an answer back (the reply's view);
* the history is written by the worker (the store is thread-safe): the user's message before the
  model is even asked, the reply as a pending row at once, its text about once a second while it
  streams, and its final text, status and stats when it ends or is cancelled.

What the first frame pays for: this module is imported before it, so it imports only the layout's
widgets and the user-facing errors (:mod:`lmassist.errors`). The generation contract (``CancelToken``:
its seven dataclasses cost about 7 ms to build) is imported in the methods that need it, which all
run after the first frame; messages, dialogs and the history sidebar are imported when first shown.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from lmassist.errors import LMAssistError
from lmassist.tui import slash
from lmassist.tui.session import ChatSession, ModelHost, Turn
from lmassist.tui.widgets.chat_input import ChatInput
from lmassist.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from lmassist.generation import CancelToken
    from lmassist.tui.widgets.message import MessageView

SAVE_EVERY_S = 1.0  # how often a streaming reply's text is written to the history
MAX_SHOWN = 40  # messages kept on screen; Textual lays out every mounted widget on each change,
# so a long chat would make every streamed token slower. Older ones stay in the history (export
# or the sidebar's search show them all).
WELCOME = (
    "Type a message and press Enter (Ctrl+J for a new line). Esc stops a reply.\n"
    "/help lists commands; tasks run on files: /summarize PATH, /translate PATH LANG, ...\n"
    "Ctrl+P opens the command palette, Ctrl+S the history, F1 the keys."
)


class ChunkBuffer:
    """Text from the worker not yet shown. The worker posts one wake-up message at a time; the UI
    takes everything buffered when it gets to it, so a busy UI gets fewer, larger writes instead
    of a backlog of one message per token (and an idle UI still shows each token at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._scheduled = False

    def put(self, text: str) -> bool:
        """Add text; True when the caller must post a wake-up (none is pending)."""
        with self._lock:
            self._parts.append(text)
            wake = not self._scheduled
            self._scheduled = True
            return wake

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            self._scheduled = False
            return text


class ReplyChunk(Message):
    """New text in ``buffer`` for ``view``."""

    def __init__(self, view: MessageView, buffer: ChunkBuffer) -> None:
        super().__init__()
        self.view = view
        self.buffer = buffer


class ReplyDone(Message):
    """A reply or a task ended: complete, interrupted, or failed with ``error``."""

    def __init__(self, view: MessageView | None, turn: Turn | None, stats: dict[str, Any] | None,
                 error: str | None = None, context_length: int | None = None) -> None:
        super().__init__()
        self.view = view
        self.turn = turn
        self.stats = stats
        self.error = error
        self.context_length = context_length


class ModelReady(Message):
    def __init__(self, name: str, device: str, context_length: int, announce: bool) -> None:
        super().__init__()
        self.name = name
        self.device = device
        self.context_length = context_length
        self.announce = announce


class ShowError(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class TaskProgress(Message):
    def __init__(self, view: MessageView, done: int, total: int | None) -> None:
        super().__init__()
        self.view = view
        self.done = done
        self.total = total


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chat"


class ChatScreen(Screen[None]):
    """The main screen; every action is reachable by a key shown in the footer."""

    BINDINGS = [
        Binding("escape", "cancel", "Stop"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+s", "toggle_history", "History"),
        Binding("ctrl+r", "regenerate", "Regen"),
        Binding("ctrl+g", "edit_last", "Edit"),
        Binding("f4", "copy_reply", "Copy"),
        Binding("ctrl+t", "switch_model", "Model"),
        Binding("ctrl+o", "pick_file", "File"),
        Binding("f3", "settings", "Settings"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, host: ModelHost, store: Any, model_name: str | None = None, cid: str | None = None) -> None:
        super().__init__()
        self.host = host
        self.store = store
        self.session = ChatSession(store)
        self.model_name = model_name  # what the user asked for; the full name once loaded
        self.model_ready = False
        self.initial_cid = cid
        self.busy = False
        self.cancel_token: CancelToken | None = None
        # Set while no reply or task thread runs: the app waits on it before the model is freed,
        # since freeing a model a worker still generates with crashes the process (SIGSEGV).
        self.work_idle = threading.Event()
        self.work_idle.set()
        self.editing: Turn | None = None
        self.tasks: dict[str, Any] = {}
        self.hidden_count = 0
        # Set before mounting: the Header reads them when it mounts.
        self.title = "lmassist"
        self.sub_title = "new chat"

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="»")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                with VerticalScroll(id="chat-log"):
                    yield Static(WELCOME, id="welcome")
                yield Static("", id="candidates")
                yield ChatInput(commands=self.commands, id="input", placeholder="Message (Enter sends, Ctrl+J new line, /help)")
                yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#chat-log", VerticalScroll).anchor()
        self.query_one(ChatInput).focus()
        self.status.model = self.model_name or ""
        self.status.state = "loading"
        # After the first frame is painted: the loading thread's imports (plugins, llama.cpp,
        # markdown-it) would otherwise compete with it for the GIL.
        self.call_after_refresh(self.load_model, self.model_name, False)
        if self.initial_cid:
            self.call_later(self.resume, self.initial_cid)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def chat_log(self) -> VerticalScroll:
        return self.query_one("#chat-log", VerticalScroll)

    @property
    def chat_input(self) -> ChatInput:
        return self.query_one(ChatInput)

    def commands(self) -> list[slash.SlashCommand]:
        """Built-in slash commands, then one per registered task (known once plugins are loaded)."""
        return list(slash.BUILTINS) + [slash.task_command(t) for t in self.tasks.values()]

    # -- showing messages ------------------------------------------------------------------------

    async def _mount(self, widget: Any) -> None:
        for welcome in self.query("#welcome"):
            await welcome.remove()
        await self.chat_log.mount(widget)
        await self._trim()
        self.chat_log.scroll_end(animate=False)

    async def _trim(self) -> None:
        """Keep at most ``MAX_SHOWN`` messages mounted, with a note saying how many are hidden."""
        shown = [c for c in self.chat_log.children if c.id != "hidden-note"]
        extra = len(shown) - MAX_SHOWN
        if extra <= 0:
            return
        for child in shown[:extra]:
            await child.remove()
        self.hidden_count += extra
        note = f"{self.hidden_count} earlier messages are not shown here; they are in the history (Ctrl+S, /export)."
        found = self.chat_log.query("#hidden-note")
        if found:
            found.first(Static).update(note)
        else:
            await self.chat_log.mount(Static(note, id="hidden-note"), before=0)

    async def add_turn(self, turn: Turn) -> MessageView:
        from lmassist.tui.widgets.message import MessageView

        view = MessageView(turn)
        await self._mount(view)
        view.refresh_header()
        return view

    async def show_error(self, text: str) -> None:
        from lmassist.tui.widgets.message import ErrorView

        await self._mount(ErrorView(text))

    async def show_info(self, markdown: str) -> None:
        from lmassist.tui.widgets.message import InfoView

        await self._mount(InfoView(markdown))

    def views(self) -> list[MessageView]:
        from lmassist.tui.widgets.message import MessageView

        return list(self.chat_log.query(MessageView))

    async def remove_from(self, turn: Turn) -> None:
        """Remove the view of ``turn`` and every message shown after it."""
        found = False
        for child in list(self.chat_log.children):
            if getattr(child, "turn", None) is turn:
                found = True
            if found:
                await child.remove()

    @on(ShowError)
    async def _on_show_error(self, event: ShowError) -> None:
        await self.show_error(event.text)

    # -- the model -------------------------------------------------------------------------------

    @work(thread=True, group="model")
    def load_model(self, name: str | None, announce: bool = True) -> None:
        """Load (or fetch from the cache) a model, with a visible loading state; errors go to the chat."""
        import lmassist.tui.widgets.message  # noqa: F401 - warm the Markdown import off the UI thread

        try:
            registry = self.host.registry()
            self.app.call_from_thread(self._set_tasks, dict(registry.tasks), registry.manager.errors)
            model = self.host.load(name)
        except Exception as e:  # noqa: BLE001 - any load failure is a message, never a crash
            self.post_message(ShowError(self._describe(e)))
            self.app.call_from_thread(self._load_failed)
            return
        # Everything alive now (Textual, the plugins, the model's Python side) lives as long as the
        # app: leave it out of the collector's full passes, which otherwise scan all of it on the UI
        # thread (60-100 ms here, the largest stall while a reply streamed).
        gc.freeze()
        info = model.info
        self.post_message(ModelReady(info.name, info.device, info.context_length, announce))

    def _set_tasks(self, tasks: dict[str, Any], errors: list[Any]) -> None:
        first = not self.tasks
        self.tasks = tasks
        if first:
            for error in errors:
                self.notify(str(error), title="plugin error", severity="warning", timeout=8)

    def _load_failed(self) -> None:
        self.status.state = "error" if not self.model_ready else "idle"
        self.status.detail = ""
        if self.model_ready:  # a failed switch: the status bar names the model still in use
            self.status.model = self.model_name or ""

    @staticmethod
    def _describe(e: BaseException) -> str:
        return str(e) if isinstance(e, LMAssistError) else f"{type(e).__name__}: {e}"

    @on(ModelReady)
    async def _on_model_ready(self, event: ModelReady) -> None:
        self.model_name = event.name
        self.model_ready = True
        self.status.model = event.name
        self.status.device = event.device
        self.status.context_length = event.context_length
        if not self.busy:
            self.status.state = "idle"
            self.status.detail = ""
        if event.announce:
            await self.show_info(f"Switched to **{event.name}** ({event.device}). New replies come from it.")

    def switch_model(self, name: str) -> None:
        if self.busy:
            self.notify("wait for the reply to finish (or press Esc) before switching model", severity="warning")
            return
        self.status.state = "loading"
        if self.model_ready:  # the current model answers until the new one is ready
            self.status.detail = name
        else:
            self.status.model = name
        self.load_model(name, announce=True)

    # -- sending ---------------------------------------------------------------------------------

    @on(ChatInput.Submitted)
    async def _on_submit(self, event: ChatInput.Submitted) -> None:
        await self.send(event.text)

    @on(ChatInput.Candidates)
    def _on_candidates(self, event: ChatInput.Candidates) -> None:
        hint = self.query_one("#candidates", Static)
        shown = event.candidates[:12]
        more = f"  (+{len(event.candidates) - len(shown)} more)" if len(event.candidates) > len(shown) else ""
        hint.update(Text("  ".join(shown) + more, style="dim"))
        hint.set_class(bool(shown), "-visible")

    async def send(self, text: str) -> None:
        """What Enter does: a slash command, or a chat message and its streamed reply."""
        if self.busy:
            self.notify("a reply is still being written; press Esc to stop it", severity="warning")
            return
        self.chat_input.clear_text()
        parsed = slash.parse(text)
        if parsed is not None:
            await self.run_slash(*parsed, text=text)
            return
        replaces = None
        if self.editing is not None:
            replaces = self.editing.mid
            await self.remove_from(self.editing)
            self.editing = None
            self.chat_input.remove_class("-editing")
        try:
            turn = self.session.add_user(text, replaces=replaces)
        except LMAssistError as e:
            await self.show_error(str(e))
            return
        await self.add_turn(turn)
        self.sub_title = self.session.conversation.display_title if self.session.conversation else ""
        self.start_reply(turn)

    def _begin_busy(self, state: str) -> CancelToken:
        from lmassist.generation import CancelToken

        self.busy = True
        self.cancel_token = CancelToken()
        self.work_idle.clear()
        self.status.state = state if self.model_ready else "loading"
        self.status.detail = ""
        return self.cancel_token

    def start_reply(self, upto: Turn, replaces: int | None = None) -> None:
        token = self._begin_busy("generating")
        self.generate(upto, replaces, token)

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
                self.post_message(ReplyDone(None, None, None))
                return
            self.app.call_from_thread(setattr, self.status, "state", "generating")
            options = self.session.options()
            messages = self.session.context(model, upto)
            turn = self.session.begin_reply(model.info.name, replaces=replaces, options=options)
            view = self.app.call_from_thread(self._mount_reply, turn)
            generation = model.chat(messages, options, token)
            saved_at = time.monotonic()
            buffer = ChunkBuffer()
            for chunk in generation:
                if buffer.put(chunk):
                    self.post_message(ReplyChunk(view, buffer))
                if time.monotonic() - saved_at >= SAVE_EVERY_S:
                    self.session.save_partial(turn, generation.text)
                    saved_at = time.monotonic()
            status = "interrupted" if generation.interrupted else "complete"
            stats = generation.stats.to_dict()
            self.session.finish_reply(turn, generation.text, status, stats)
            self.post_message(ReplyDone(view, turn, stats, context_length=model.context_length))
        except Exception as e:  # noqa: BLE001 - a backend failure becomes a message in the chat
            if turn is not None:
                try:
                    self.session.finish_reply(turn, turn.content, "error")
                except Exception:  # noqa: BLE001
                    pass
            self.post_message(ReplyDone(view, turn, None, error=self._describe(e)))

    async def _mount_reply(self, turn: Turn) -> MessageView:
        view = await self.add_turn(turn)
        view.start_stream()
        return view

    @on(ReplyChunk)
    async def _on_chunk(self, event: ReplyChunk) -> None:
        text = event.buffer.take()
        if text:
            await event.view.write(text)

    @on(TaskProgress)
    def _on_progress(self, event: TaskProgress) -> None:
        event.view.show_progress(event.done, event.total)
        if event.total:
            self.status.detail = f"{event.done}/{event.total}"

    @on(ReplyDone)
    async def _on_done(self, event: ReplyDone) -> None:
        if event.view is not None and event.view.is_mounted:
            if event.turn is not None and event.turn.kind == "task" and event.turn.status != "error":
                event.view.hide_progress()
                await event.view.set_content(event.turn.content)
            await event.view.finish()
            if event.error and event.turn is not None and event.turn.kind == "task":
                await event.view.remove()
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
        if self.session.conversation is not None:
            self.sub_title = self.session.conversation.display_title
        self._reload_sidebar()

    # -- slash commands --------------------------------------------------------------------------

    async def run_slash(self, name: str, argline: str, text: str) -> None:
        """Built-in commands act at once; a task runs in a worker with progress."""
        builtin = getattr(self, f"slash_{name}", None)
        if builtin is not None and any(c.name == name for c in slash.BUILTINS):
            try:
                result = builtin(argline)
                if hasattr(result, "__await__"):
                    await result
            except LMAssistError as e:
                await self.show_error(str(e))
            return
        task = self.tasks.get(name)
        if task is None:
            known = ", ".join("/" + c.name for c in self.commands())
            hint = "" if self.tasks or self.host.registry_ready else " (plugins are still loading)"
            await self.show_error(f"unknown command /{name}{hint}; commands: {known}")
            return
        try:
            turn = self.session.add_user(text, kind="task", meta={"task": name})
        except LMAssistError as e:
            await self.show_error(str(e))
            return
        await self.add_turn(turn)
        token = self._begin_busy("running task")
        self.run_task(task, argline, token)

    @work(thread=True, group="reply")
    def run_task(self, task: Any, argline: str, token: CancelToken) -> None:
        try:
            self._run_task(task, argline, token)
        finally:
            self.work_idle.set()

    def _run_task(self, task: Any, argline: str, token: CancelToken) -> None:
        view = turn = None
        name = str(task.name)
        try:
            model = self.host.load(self.model_name)
            self.app.call_from_thread(setattr, self.status, "state", "running task")
            turn = self.session.begin_reply(model.info.name, kind="task", meta={"task": name})
            view = self.app.call_from_thread(self.add_turn, turn)

            def progress(done: int, total: int | None = None) -> None:
                self.post_message(TaskProgress(view, done, total))

            result = task.run_slash(model, argline, progress=progress, cancel=token)
            status = "interrupted" if token.cancelled else "complete"
            self.session.finish_reply(turn, str(result or ""), status)
            self.post_message(ReplyDone(view, turn, None))
        except Exception as e:  # noqa: BLE001 - bad input or a broken plugin: shown, never a crash
            message = self._describe(e)
            if turn is not None:
                try:
                    self.session.finish_reply(turn, f"error: {message}", "error")
                except Exception:  # noqa: BLE001
                    pass
            self.post_message(ReplyDone(view, turn, None, error=message))

    def slash_help(self, argline: str) -> Any:
        from lmassist.tui.screens.help import help_markdown

        return self.show_info("# Help\n\n" + help_markdown(self.commands()))

    def slash_model(self, argline: str) -> Any:
        if not argline:
            self.action_switch_model()
            return None
        self.switch_model(argline.strip())
        return None

    @work(thread=True, group="models")
    def slash_models(self, argline: str) -> None:
        try:
            specs = self.host.registry().models()
        except Exception as e:  # noqa: BLE001
            self.post_message(ShowError(self._describe(e)))
            return
        from lmassist.tui.screens.help import cell

        lines = ["| model | installed | note |", "|---|---|---|"]
        for s in specs:
            mark = " (current)" if s.full_name == self.model_name else ""
            lines.append(f"| `{cell(s.full_name)}`{mark} | {'yes' if s.installed else 'no'} | {cell(s.description)} |")
        self.app.call_from_thread(self.show_info, "\n".join(lines) + "\n\n`/model NAME` switches.")

    async def slash_new(self, argline: str) -> None:
        await self.action_new_chat()

    async def slash_system(self, argline: str) -> None:
        self.session.set_settings({**self.session.settings, "system": argline})
        await self.show_info(f"System prompt {'set' if argline else 'cleared'} for this chat.")

    async def slash_set(self, argline: str) -> None:
        words = slash.split_args(argline)
        if len(words) != 2:
            raise LMAssistError("usage: /set KEY VALUE (keys: max_new_tokens, temperature, top_p, top_k, "
                                "repetition_penalty, seed)")
        self.session.set_option(words[0], words[1])
        await self.show_info(f"`{words[0]}` = `{words[1]}` for this chat.")

    def slash_settings(self, argline: str) -> None:
        self.action_settings()

    async def slash_regen(self, argline: str) -> None:
        await self.action_regenerate()

    async def slash_edit(self, argline: str) -> None:
        await self.action_edit_last()

    def slash_copy(self, argline: str) -> None:
        self.action_copy_reply()

    async def slash_rename(self, argline: str) -> None:
        if self.session.conversation is None:
            raise LMAssistError("nothing to rename yet: send a message first")
        self.store.rename(self.session.conversation.id, argline)
        self.session.refresh()
        self.sub_title = self.session.conversation.display_title
        self._reload_sidebar()
        await self.show_info(f"Renamed to **{self.session.conversation.display_title}**.")

    async def slash_export(self, argline: str) -> None:
        words = slash.split_args(argline)
        fmt = (words[0] if words else "md").lower()
        if self.session.conversation is None:
            raise LMAssistError("nothing to export yet: send a message first")
        path = self.export(self.session.conversation.id, fmt, words[1] if len(words) > 1 else None)
        await self.show_info(f"Exported to `{path}`.")

    def slash_open(self, argline: str) -> None:
        self.action_pick_file()

    def slash_plugins(self, argline: str) -> None:
        self.app.action_show_plugins()  # type: ignore[attr-defined]

    def slash_quit(self, argline: str) -> None:
        self.app.exit()

    # -- actions ---------------------------------------------------------------------------------

    def stop_work(self) -> bool:
        """Ask the running reply or task to stop (it keeps its partial text, marked interrupted);
        True when nothing runs any more."""
        if self.cancel_token is not None:
            self.cancel_token.cancel()
        return self.work_idle.is_set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait, without blocking the UI, until the reply or task thread has ended."""
        deadline = time.monotonic() + timeout
        # ``busy`` clears when the screen has handled the reply's end (ReplyDone), so nothing is
        # left to draw into views that quitting is about to remove.
        while not (self.work_idle.is_set() and not self.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.work_idle.is_set()

    def action_cancel(self) -> None:
        """Esc: stop the reply; else leave editing; else close the history sidebar."""
        if self.busy and self.cancel_token is not None:
            self.cancel_token.cancel()
            self.status.detail = "(stopping)"
        elif self.editing is not None:
            self.editing = None
            self.chat_input.clear_text()
            self.chat_input.remove_class("-editing")
            self.notify("edit cancelled")
        elif self.query("HistorySidebar.-visible"):
            self.action_toggle_history()

    async def action_new_chat(self) -> None:
        if self.busy:
            self.notify("press Esc to stop the reply first", severity="warning")
            return
        self.session.new()
        self.editing = None
        await self.chat_log.remove_children()
        self.hidden_count = 0
        await self.chat_log.mount(Static(WELCOME, id="welcome"))
        self.sub_title = "new chat"
        self.status.tokens_per_s = self.status.ttft_s = self.status.context_used = None
        self.chat_input.focus()

    async def action_regenerate(self) -> None:
        if self.busy:
            return
        last = self.session.turns[-1] if self.session.turns else None
        if last is None or last.kind != "chat" or last.role != "assistant":
            self.notify("nothing to regenerate: the last message is not a reply", severity="warning")
            return
        user = self.session.last("user")
        if user is None:
            return
        await self.remove_from(last)
        self.session.turns.remove(last)  # its history row stays; the new reply's row replaces it
        self.start_reply(user, replaces=last.mid)

    async def action_edit_last(self) -> None:
        if self.busy:
            return
        user = self.session.last("user")
        if user is None:
            self.notify("no message to edit yet", severity="warning")
            return
        self.editing = user
        self.chat_input.text = user.content
        self.chat_input.move_cursor(self.chat_input.document.end)
        self.chat_input.add_class("-editing")
        self.chat_input.focus()
        self.notify("editing your last message: Enter resends it, Esc cancels")

    def action_copy_reply(self) -> None:
        reply = next((t for t in reversed(self.session.turns) if t.role == "assistant"), None)
        if reply is None:
            self.notify("no reply to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(reply.content)
        self.notify(f"copied the last reply ({len(reply.content)} characters)")

    def action_switch_model(self) -> None:
        self.app.action_pick_model()  # type: ignore[attr-defined]

    def action_pick_file(self) -> None:
        from lmassist.tui.screens.file_picker import FilePicker

        def chosen(path: str | None) -> None:
            if not path:
                return
            box = self.chat_input
            text = box.text
            if not text:
                box.insert("/summarize " + path)
            else:
                box.move_cursor(box.document.end)
                box.insert(("" if text.endswith(" ") else " ") + path)
            box.focus()

        self.app.push_screen(FilePicker(), chosen)

    def action_settings(self) -> None:
        from lmassist.tui.screens.settings import SettingsScreen

        def saved(result: dict[str, Any] | None) -> None:
            if result is None:
                return
            try:
                self.session.set_settings(result)
            except LMAssistError as e:
                self.notify(str(e), severity="error")
                return
            self.notify("settings saved for this chat")

        self.app.push_screen(SettingsScreen(self.session.settings), saved)

    def action_help(self) -> None:
        from lmassist.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.commands()))

    # -- history ---------------------------------------------------------------------------------

    def action_toggle_history(self) -> None:
        from lmassist.tui.widgets.sidebar import HistorySidebar

        found = self.query(HistorySidebar)
        if not found:
            sidebar = HistorySidebar(self.store, id="sidebar", classes="-visible")
            self.query_one("#body", Horizontal).mount(sidebar, before=0)
            self.call_after_refresh(lambda: self.query_one("#history-search").focus())
            return
        sidebar = found.first()
        visible = not sidebar.has_class("-visible")
        sidebar.set_class(visible, "-visible")
        if visible:
            sidebar.reload()
            self.query_one("#history-search").focus()
        else:
            self.chat_input.focus()

    def _reload_sidebar(self) -> None:
        from lmassist.tui.widgets.sidebar import HistorySidebar

        for sidebar in self.query(HistorySidebar):
            if sidebar.has_class("-visible"):
                sidebar.reload()

    async def resume(self, cid: str) -> None:
        """Show a past conversation and continue it, on the model it last used."""
        if self.busy:
            self.notify("press Esc to stop the reply first", severity="warning")
            return
        try:
            self.session.load(cid)
        except LMAssistError as e:
            await self.show_error(str(e))
            return
        self.editing = None
        await self.chat_log.remove_children()
        self.hidden_count = 0
        from lmassist.tui.widgets.message import MessageView

        views = [MessageView(turn) for turn in self.session.turns[-MAX_SHOWN:]]
        await self.chat_log.mount_all(views)  # one mount, one layout, however long the chat
        for view in views:
            view.refresh_header()
        self.chat_log.scroll_end(animate=False)
        if len(self.session.turns) > MAX_SHOWN:
            self.hidden_count = len(self.session.turns) - MAX_SHOWN
            note = f"{self.hidden_count} earlier messages are not shown here; they are in the history (/export)."
            await self.chat_log.mount(Static(note, id="hidden-note"), before=0)
        conv = self.session.conversation
        self.sub_title = conv.display_title
        if not self.session.turns:
            await self.chat_log.mount(Static(WELCOME, id="welcome"))
        if conv.model and conv.model != self.model_name:
            self.switch_model(conv.model)
        self.chat_input.focus()

    def export(self, cid: str, fmt: str, path: str | None = None) -> Path:
        """Write a conversation to a file (default: in the current folder) and say where."""
        if fmt not in ("md", "json"):
            raise LMAssistError(f"unknown export format {fmt!r}; use md or json")
        text = self.store.export(cid, fmt)
        if path is None:
            conv = self.store.get(cid)
            target = Path.cwd() / f"lmassist-{_slug(conv.display_title)}-{conv.id[:8]}.{fmt}"
        else:
            target = Path(path).expanduser()
        if target.is_dir():
            raise LMAssistError(f"{target} is a folder; give a file name")
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise LMAssistError(f"cannot write {target}: {e.strerror or e}") from None
        self.notify(f"exported to {target}")
        return target

    async def on_history_sidebar_action(self, event: Any) -> None:
        """Resume, rename, delete or export a conversation picked in the sidebar."""
        cid = event.cid
        try:
            if event.action == "resume":
                await self.resume(cid)
            elif event.action == "export":
                self.export(cid, event.arg)
            elif event.action == "rename":
                self._ask_rename(cid)
            elif event.action == "delete":
                self._ask_delete(cid)
        except LMAssistError as e:
            self.notify(str(e), severity="error")

    def _ask_rename(self, cid: str) -> None:
        from lmassist.tui.screens.dialogs import TextPrompt

        conv = self.store.get(cid)

        def renamed(title: str | None) -> None:
            if not title:
                return
            try:
                self.store.rename(cid, title)
            except LMAssistError as e:
                self.notify(str(e), severity="error")
                return
            if self.session.conversation is not None and self.session.conversation.id == cid:
                self.session.refresh()
                self.sub_title = self.session.conversation.display_title
            self._reload_sidebar()

        self.app.push_screen(TextPrompt("Rename conversation", conv.title or ""), renamed)

    def _ask_delete(self, cid: str) -> None:
        from lmassist.tui.screens.dialogs import Confirm

        conv = self.store.get(cid)

        async def answered(yes: bool | None) -> None:
            if not yes:
                return
            self.store.delete(cid)
            if self.session.conversation is not None and self.session.conversation.id == cid:
                await self.action_new_chat()
            self._reload_sidebar()
            self.notify(f"deleted {conv.display_title!r}")

        self.app.push_screen(Confirm(f"Delete {conv.display_title!r} and its {conv.message_count} messages?"), answered)
