"""The lmassist chat app: ``lmassist`` with no arguments opens it.

The first frame comes before anything slow: the model loads, plugins are collected and the Markdown
widget is imported in a worker thread after the screen is up (see ``ChatScreen.load_model``), and the
history database is opened in another one (see :class:`DeferredStore`). This module itself is only
imported when the app opens, so ``lmassist --help`` never imports Textual.

The garbage collector is the app's business from its first frame on (``lmassist.launch`` turns it
off before): see the ``garbage collector`` section below.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.screen import Screen

from lmassist.errors import LMAssistError
from lmassist.tui.commands import PALETTE_AFTER_MODEL, app_bindings
from lmassist.tui.screens.chat import ChatScreen, ModelReady
from lmassist.tui.session import ModelHost

STOP_WAIT_S = 15.0  # how long quitting waits for a reply to stop (a token, or one prompt batch)


def _open_user_store() -> Any:
    from lmassist.store import Store

    return Store()


class DeferredStore:
    """The user's history store, opened after the first frame instead of before it.

    Opening it imports sqlite3 and :mod:`lmassist.store` and touches the disk (WAL mode, the schema
    check), work the first frame does not need. The app opens it in a worker right after the first
    paint; whatever needs it sooner (a conversation to resume, a message sent at once) opens it on
    the spot, under the same lock, so every caller gets the one store: ask for it with :meth:`open`.
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
    BINDINGS = app_bindings()

    def __init__(self, model: str | None = None, cid: str | None = None, store: Any = None,
                 host: ModelHost | None = None, handle_signals: bool = False) -> None:
        super().__init__()
        self.handle_signals = handle_signals
        self._owns_store = store is None
        self.store: Any = DeferredStore() if store is None else store
        self._open_store: Callable[[], Any] = self.store.open if store is None else (lambda: store)
        self.startup_error: BaseException | None = None
        self.host = host or ModelHost()
        self._owns_host = host is None
        self.requested_model = model
        self.initial_cid = cid
        self._model_names: list[str] = []
        self._chat_screen: ChatScreen | None = None
        self._exiting = False

    def get_default_screen(self) -> Screen[Any]:
        self._chat_screen = ChatScreen(self.host, self._open_store, self.requested_model, self.initial_cid)
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
        for name, entry in chat.table.palette():
            yield SystemCommand(entry.title, entry.help, lambda a=entry.action: chat.run_action(a))
            if name == PALETTE_AFTER_MODEL:
                yield from self._model_and_task_commands(chat)
        yield from super().get_system_commands(screen)

    def _model_and_task_commands(self, chat: ChatScreen) -> Iterable[SystemCommand]:
        for name in self._model_names:
            yield SystemCommand(f"Switch model: {name}", "Use this model from now on",
                                lambda n=name: chat.switch_model(n), discover=False)
        for command in chat.commands():
            if command.task is not None:
                yield SystemCommand(f"Run task: {command.name}", f"{command.summary}  {command.usage}",
                                    lambda n=command.name: chat.chat_input.start_command(n))

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
        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                loop.add_signal_handler(signum, lambda n=int(signum): self.exit(return_code=128 + n))
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
                pass

    # -- the garbage collector -------------------------------------------------------------------

    def _after_first_frame(self) -> None:
        gc.enable()  # off until the first frame (lmassist.launch): building it makes hardly any garbage
        if self._owns_store:
            self._open_history()

    @on(ModelReady)
    def _freeze_long_lived(self) -> None:
        # What is alive once a model is loaded lives as long as the app: keep it out of the
        # collector's full passes, the largest stall of the UI thread while a reply streams.
        gc.freeze()

    # -- the history -----------------------------------------------------------------------------

    @work(thread=True, group="store", exit_on_error=False)
    def _open_history(self) -> None:
        """Open the history after the first frame; if it cannot be opened, the app cannot keep
        what is said in it, so it closes and ``run_app`` raises the store's one-line error."""
        try:
            self.store.open()
        except Exception as e:  # noqa: BLE001 - reported by run_app, never a traceback in the UI
            self.call_from_thread(self._store_failed, e)

    def _store_failed(self, error: BaseException) -> None:
        self.startup_error = error
        self.exit(return_code=1)

    def _handle_exception(self, error: Exception) -> None:
        # A key that needs the history (Ctrl+S) pressed before the background open failed
        # meets the same error first: it ends the app the same way, as one line, not a traceback.
        if self._owns_store and not self.store.is_open and isinstance(error, LMAssistError):
            self._store_failed(error)
            return
        super()._handle_exception(error)

    def exit(self, result: None = None, return_code: int = 0, message: Any = None) -> None:
        """Leave the app, but first stop the reply being written and let its thread end.

        The thread generates with the model that unmounting frees; freeing it under the thread
        crashed the process (SIGSEGV). The reply stops at its next token and is saved as
        interrupted; every way out (Ctrl+Q, /quit, a signal) comes through here.
        """
        chat = self._chat_screen
        if chat is None or chat.conversation.stop_work():
            super().exit(result, return_code, message)
            return
        if not self._exiting:
            self._exiting = True
            self.run_worker(self._exit_when_stopped(result, return_code, message), group="exit")

    async def _exit_when_stopped(self, result: None, return_code: int, message: Any) -> None:
        assert self._chat_screen is not None
        await self._chat_screen.conversation.wait_idle(STOP_WAIT_S)
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        # Last line of defence for a shutdown that did not come through ``exit`` (a test's
        # ``run_test`` block ending mid-reply): stop the worker and give it a moment; if it is still
        # inside the model after that, leave the model to the process's end rather than free it
        # under the worker.
        chat = self._chat_screen
        idle = chat is None or chat.conversation.stop_work() or chat.conversation.work_idle.wait(STOP_WAIT_S)
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
