"""The lmassist chat app: ``lmassist`` with no arguments opens it.

The first frame comes before anything slow: the model loads, plugins are collected and the Markdown
widget is imported in a worker thread after the screen is up (see ``ChatScreen.load_model``), and the
history database is opened in another one (see :class:`DeferredStore`). This module itself is only
imported when the app opens, so ``lmassist --help`` never imports Textual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from lmassist.errors import LMAssistError
from lmassist.tui.screens.chat import ChatScreen
from lmassist.tui.session import ModelHost

STOP_WAIT_S = 15.0  # how long quitting waits for a reply to stop (a token, or one prompt batch)


def _open_user_store() -> Any:
    from lmassist.store import Store

    return Store()


class DeferredStore:
    """The user's history store, opened after the first frame instead of before it.

    Opening it imports sqlite3 and :mod:`lmassist.store` and touches the disk (WAL mode, the schema
    check): 15-20 ms on two busy cores that the first frame does not need. The app opens it in a
    worker right after the first paint; whatever needs it sooner (a conversation to resume, a message
    sent within those milliseconds) opens it on the spot, under the same lock, so every caller gets
    the one store. Every other attribute is the real store's.
    """

    def __init__(self, factory: Callable[[], Any] = _open_user_store) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._store: Any = None
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def open(self) -> Any:
        """The store, opened now if it is not yet (raises the store's one-line errors)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._closed:
                    raise LMAssistError("the history is closed")
                if self._store is None:
                    self._store = self._factory()
                store = self._store
        return store

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never open the database for a probe of private attributes
            raise AttributeError(name)
        return getattr(self.open(), name)

    def close(self) -> None:
        """Close the store if it was opened; a later ``open`` raises instead of reopening it."""
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
            if store is not None:
                store.close()


class LMAssistApp(App[None]):
    """The app: one chat screen, dialogs over it, and the command palette (Ctrl+P) for everything."""

    CSS_PATH = "lmassist.tcss"
    TITLE = "lmassist"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, model: str | None = None, cid: str | None = None, store: Any = None,
                 host: ModelHost | None = None, handle_signals: bool = False) -> None:
        super().__init__()
        self.handle_signals = handle_signals
        self._owns_store = store is None
        self.store: Any = DeferredStore() if store is None else store
        self.startup_error: BaseException | None = None
        self.host = host or ModelHost()
        self._owns_host = host is None
        self.requested_model = model
        self.initial_cid = cid
        self._model_names: list[str] = []
        self._chat_screen: ChatScreen | None = None
        self._exiting = False

    def get_default_screen(self) -> Screen[Any]:
        self._chat_screen = ChatScreen(self.host, self.store, self.requested_model, self.initial_cid)
        return self._chat_screen

    @property
    def chat(self) -> ChatScreen:
        """The chat screen, wherever it is in the stack (dialogs may be above it)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ChatScreen):
                return screen
        raise LookupError("no chat screen")

    # -- command palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        try:
            chat = self.chat
        except LookupError:
            yield from super().get_system_commands(screen)
            return
        yield SystemCommand("New chat", "Start a new conversation (Ctrl+N)", chat.action_new_chat)
        yield SystemCommand("Switch model", "Pick the backend and model for the next replies (Ctrl+T)",
                            self.action_pick_model)
        for name in self._model_names:
            yield SystemCommand(f"Switch model: {name}", "Use this model from now on",
                                lambda n=name: chat.switch_model(n), discover=False)
        for task in chat.tasks.values():
            usage = getattr(task, "slash_usage", "") or f"/{task.name}"
            yield SystemCommand(f"Run task: {task.name}", f"{getattr(task, 'summary', '')}  {usage}",
                                lambda t=task: self._start_task(t))
        yield SystemCommand("Run task on a file…", "Pick a file, then a task (Ctrl+O)", chat.action_pick_file)
        yield SystemCommand("Export chat as Markdown", "Write this conversation to a .md file",
                            lambda: self._export("md"))
        yield SystemCommand("Export chat as JSON", "Write this conversation, with stats, to a .json file",
                            lambda: self._export("json"))
        yield SystemCommand("History", "Search, resume, rename, delete, export past chats (Ctrl+S)",
                            chat.action_toggle_history)
        yield SystemCommand("Regenerate reply", "Ask again for the last reply (Ctrl+R)", chat.action_regenerate)
        yield SystemCommand("Edit last message", "Change and resend your last message (Ctrl+G)", chat.action_edit_last)
        yield SystemCommand("Copy reply", "Copy the last reply to the clipboard (F4)", chat.action_copy_reply)
        yield SystemCommand("Settings", "System prompt and generation options of this chat (F3)", chat.action_settings)
        yield SystemCommand("Plugins", "Installed plugins, backends, tasks and their errors", self.action_show_plugins)
        yield SystemCommand("Help", "Keys and slash commands (F1)", chat.action_help)
        yield from super().get_system_commands(screen)

    def _start_task(self, task: Any) -> None:
        box = self.chat.chat_input
        box.clear_text()
        box.insert(f"/{task.name} ")
        box.focus()

    def _export(self, fmt: str) -> None:
        chat = self.chat
        if chat.session.conversation is None:
            self.notify("nothing to export yet: send a message first", severity="warning")
            return
        try:
            chat.export(chat.session.conversation.id, fmt)
        except LMAssistError as e:
            self.notify(str(e), severity="error")

    @work(thread=True, group="palette")
    def action_pick_model(self) -> None:
        """A palette of every model the backends know, the loaded ones first."""
        try:
            names = self._list_models()
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        chat = self.chat
        commands = [(name, (lambda n=name: chat.switch_model(n)),
                     "current" if name == chat.model_name else ("loaded" if name in self.host.loaded else ""))
                    for name in names]
        self.call_from_thread(self.search_commands, commands, "Switch to model…")

    def _list_models(self) -> list[str]:
        registry = self.host.registry()
        specs = registry.models()
        names = list(self.host.loaded) + [s.full_name for s in specs if s.installed]
        names += [s.full_name for s in specs if not s.installed]
        self._model_names = list(dict.fromkeys(names))
        return self._model_names

    @work(thread=True, group="palette")
    def action_show_plugins(self) -> None:
        from lmassist.tui.screens.plugins import PluginsScreen, plugins_markdown

        try:
            registry = self.host.registry()
            text = plugins_markdown(registry.manager, registry.tasks, registry.backends)
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        self.call_from_thread(self.push_screen, PluginsScreen(text))

    # -- lifetime --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.call_after_refresh(self._after_first_frame)
        if self.handle_signals:
            self._catch_signals()

    def _catch_signals(self) -> None:
        """SIGTERM (``kill``, a logout) and SIGHUP (the terminal closed) quit as Ctrl+Q does: the
        reply stops and is kept, marked interrupted; the exit status is 128 + the signal."""
        import asyncio
        import signal

        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                loop.add_signal_handler(signum, lambda n=int(signum): self.exit(return_code=128 + n))
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
                pass

    def _after_first_frame(self) -> None:
        gc.enable()  # ``lmassist`` turns it off until now, see lmassist.launch.open_chat
        if isinstance(self.store, DeferredStore):
            self._open_store()

    @work(thread=True, group="store", exit_on_error=False)
    def _open_store(self) -> None:
        """Open the history after the first frame; if it cannot be opened, the app cannot keep
        what is said in it, so it closes and ``run_app`` raises the store's one-line error."""
        try:
            self.store.open()
        except Exception as e:  # noqa: BLE001 - reported by run_app, never a traceback in the UI
            self.call_from_thread(self._store_failed, e)

    def _store_failed(self, error: BaseException) -> None:
        self.startup_error = error
        self.exit(return_code=1)

    def exit(self, result: None = None, return_code: int = 0, message: Any = None) -> None:
        """Leave the app, but first stop the reply being written and let its thread end.

        The thread generates with the model that unmounting frees; freeing it under the thread
        crashed the process (SIGSEGV). The reply stops at its next token and is saved as
        interrupted; every way out (Ctrl+Q, /quit, a signal) comes through here.
        """
        chat = self._chat_screen
        if chat is None or chat.stop_work():
            super().exit(result, return_code, message)
            return
        if not self._exiting:
            self._exiting = True
            self.run_worker(self._exit_when_stopped(result, return_code, message), group="exit")

    async def _exit_when_stopped(self, result: None, return_code: int, message: Any) -> None:
        assert self._chat_screen is not None
        await self._chat_screen.wait_idle(STOP_WAIT_S)
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        # Last line of defence for a shutdown that did not come through ``exit`` (a test's
        # ``run_test`` block ending mid-reply): stop the worker and give it a moment; if it is still
        # inside the model after that, leave the model to the process's end rather than free it
        # under the worker.
        chat = self._chat_screen
        idle = chat is None or chat.stop_work() or chat.work_idle.wait(STOP_WAIT_S)
        if self._owns_host and idle:
            self.host.close()
        if self._owns_store:
            self.store.close()


def run_app(model: str | None = None, cid: str | None = None) -> None:
    """Open the chat app in this terminal (on ``model``, resuming conversation ``cid`` if given).

    Raises the history's error (an unreadable or foreign database file) if it could not be opened.
    """
    app = LMAssistApp(model=model, cid=cid, handle_signals=True)
    app.run()
    if app.startup_error is not None:
        raise app.startup_error
    if app.return_code:  # quit by a signal: say so in the exit status, as the shell does
        raise SystemExit(app.return_code)
