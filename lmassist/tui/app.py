"""The lmassist chat app: ``lmassist`` with no arguments opens it.

The first frame comes before anything slow: the model loads, plugins are collected and the Markdown
widget is imported in a worker thread after the screen is up (see ``ChatScreen.load_model``). This
module itself is only imported when the app opens, so ``lmassist --help`` never imports Textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from lmassist.tui.screens.chat import ChatScreen
from lmassist.tui.session import ModelHost


class LMAssistApp(App[None]):
    """The app: one chat screen, dialogs over it, and the command palette (Ctrl+P) for everything."""

    CSS_PATH = "lmassist.tcss"
    TITLE = "lmassist"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, model: str | None = None, cid: str | None = None, store: Any = None,
                 host: ModelHost | None = None) -> None:
        super().__init__()
        self._owns_store = store is None
        if store is None:
            from lmassist.store import Store

            store = Store()
        self.store = store
        self.host = host or ModelHost()
        self._owns_host = host is None
        self.requested_model = model
        self.initial_cid = cid
        self._model_names: list[str] = []

    def get_default_screen(self) -> Screen[Any]:
        return ChatScreen(self.host, self.store, self.requested_model, self.initial_cid)

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
        from lmassist.generation import LMAssistError

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

    def on_unmount(self) -> None:
        if self._owns_host:
            self.host.close()
        if self._owns_store:
            self.store.close()


def run_app(model: str | None = None, cid: str | None = None) -> None:
    """Open the chat app in this terminal (on ``model``, resuming conversation ``cid`` if given)."""
    LMAssistApp(model=model, cid=cid).run()
