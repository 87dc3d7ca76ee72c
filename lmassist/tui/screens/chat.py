"""The chat screen: layout and wiring of the conversation, the message box, the status bar and the sidebar.

What each part does lives with it: the conversation and its reply and task workers in
:class:`~lmassist.tui.widgets.conversation.Conversation`, past chats in the history sidebar, the
commands (slash words, keys, palette, help) in :mod:`lmassist.tui.commands`. The screen loads the
model, reads what is typed, runs the commands and connects the widgets' messages.

This module is imported before the first frame, so the dialogs, the sidebar and the message views
are imported when first shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from lmassist.errors import LMAssistError, describe
from lmassist.tui import slash, sources
from lmassist.tui.commands import Command, CommandTable, screen_bindings
from lmassist.tui.session import OPTION_FIELDS, ChatSession, ModelHost, Turn
from lmassist.tui.widgets.chat_input import ChatInput, CompletionHint
from lmassist.tui.widgets.conversation import MAX_SHOWN, Conversation
from lmassist.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from pathlib import Path

    from lmassist.tui.widgets.citations import CitationLink
    from lmassist.tui.widgets.message import MessageView
    from lmassist.tui.widgets.sidebar import HistorySidebar

__all__ = ["MAX_SHOWN", "ChatScreen", "ModelReady"]


class ModelReady(Message):
    """A model is loaded and answers from now on (the app freezes the collector on it too)."""

    def __init__(self, name: str, device: str, context_length: int, announce: bool) -> None:
        super().__init__()
        self.name = name
        self.device = device
        self.context_length = context_length
        self.announce = announce


class ChatScreen(Screen[None]):
    """The main screen; every action is reachable by a key shown in the footer."""

    BINDINGS = screen_bindings()

    def __init__(self, host: ModelHost, open_store: Callable[[], Any], model_name: str | None = None,
                 cid: str | None = None) -> None:
        super().__init__()
        self.host = host
        self.open_store = open_store  # the history: opened by the app after the first frame, or on first use
        self.table = CommandTable()
        self.initial_cid = cid
        self.editing: Turn | None = None
        self.status = StatusBar(id="status")
        self.conversation = Conversation(host, open_store, self.status, model_name, id="chat-log")
        self.words = sources.ArgumentWords(self)
        self.chat_input = ChatInput(commands=self.commands, words=self.words, id="input",
                                    placeholder="Message (Enter sends, Ctrl+J new line, /help)")
        # Set before mounting: the Header reads them when it mounts.
        self.title = "lmassist"
        self.sub_title = "new chat"

    def compose(self) -> ComposeResult:
        yield Header(icon="»")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield self.conversation
                yield CompletionHint("", id="candidates")
                yield self.chat_input
                yield self.status
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.conversation.anchor()
        self.chat_input.focus()
        self.status.model = self.model_name or ""
        self.status.state = "loading"
        # After the first frame is painted: the loading thread's imports (plugins, llama.cpp,
        # markdown-it) would otherwise compete with it for the GIL.
        self.call_after_refresh(self.load_model, self.model_name, False)
        if self.initial_cid:
            self.call_later(self.resume, self.initial_cid)

    # -- what the app, the commands and the tests read -------------------------------------------

    @property
    def session(self) -> ChatSession:
        return self.conversation.session

    @property
    def model_name(self) -> str | None:
        return self.conversation.model_name

    @property
    def model_ready(self) -> bool:
        return self.conversation.model_ready

    @property
    def busy(self) -> bool:
        return self.conversation.busy

    @property
    def tasks(self) -> dict[str, Any]:
        return self.table.tasks

    def commands(self) -> list[Command]:
        """The slash commands: built-in ones, then one per registered task (once plugins are loaded)."""
        return self.table.slash_commands()

    def views(self) -> list[MessageView]:
        return self.conversation.views()

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
            self.app.call_from_thread(self.conversation.show_error, describe(e))
            self.app.call_from_thread(self._load_failed)
            return
        info = model.info
        self.post_message(ModelReady(info.name, info.device, info.context_length, announce))

    def _set_tasks(self, tasks: dict[str, Any], errors: list[Any]) -> None:
        first = not self.table.tasks and not self.table.hidden
        for line in self.table.set_tasks(tasks):  # a task a built-in command hides, said once
            self.notify(line, title="plugin task", severity="warning", timeout=8)
        if first:
            for error in errors:
                self.notify(str(error), title="plugin error", severity="warning", timeout=8)

    def _load_failed(self) -> None:
        self.status.load_failed((self.model_name or "") if self.model_ready else None)

    @on(ModelReady)
    async def _on_model_ready(self, event: ModelReady) -> None:
        self.conversation.model_name = event.name
        self.conversation.model_ready = True
        self.status.loaded(event.name, event.device, event.context_length, self.busy)
        if event.announce:
            await self.conversation.show_info(
                f"Switched to **{event.name}** ({event.device}). New replies come from it.")

    def switch_model(self, name: str) -> None:
        if self.busy:
            self.notify("wait for the reply to finish (or press Esc) before switching model", severity="warning")
            return
        self.status.loading(name, switching=self.model_ready)
        self.load_model(name, announce=True)

    # -- what is typed ---------------------------------------------------------------------------

    @on(ChatInput.Submitted)
    async def _on_submit(self, event: ChatInput.Submitted) -> None:
        await self.send(event.text)

    @on(ChatInput.Candidates)
    def _on_candidates(self, event: ChatInput.Candidates) -> None:
        self.query_one(CompletionHint).show(event.candidates)

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
            await self.conversation.remove_from(self.editing)
            self._stop_editing()
        turn = await self.conversation.say(text, replaces)
        if turn is not None:
            self._show_title()
            self.conversation.start_reply(turn)

    async def run_slash(self, name: str, argline: str, text: str) -> None:
        """A built-in command acts at once; a task runs in the conversation's worker with progress."""
        command = self.table.get(name)
        if command is None:
            known = ", ".join("/" + c.name for c in self.commands())
            hint = "" if self.tasks or self.host.registry_ready else " (plugins are still loading)"
            await self.conversation.show_error(f"unknown command /{name}{hint}; commands: {known}")
            return
        if command.task is not None:
            refusal = sources.folder_job_refusal(command, argline)
            if refusal:
                await self.conversation.show_error(refusal)
            else:
                await self.conversation.start_task(command.task, argline, text)
            return
        try:
            if command.run is None:
                await self.run_action(command.action)
            else:
                result = command.run(self, argline)
                if result is not None:
                    await result
        except LMAssistError as e:
            await self.conversation.show_error(str(e))

    # -- actions (keys and palette: see lmassist.tui.commands) -----------------------------------

    def action_cancel(self) -> None:
        """Esc: stop the reply; else leave editing; else close the history sidebar."""
        if self.conversation.cancel():
            return
        if self.editing is not None:
            self._stop_editing()
            self.chat_input.clear_text()
            self.notify("edit cancelled")
        elif self.query("HistorySidebar.-visible"):
            self.action_toggle_history()

    def _stop_editing(self) -> None:
        self.editing = None
        self.chat_input.remove_class("-editing")

    async def action_new_chat(self) -> None:
        if self.busy:
            self.notify("press Esc to stop the reply first", severity="warning")
            return
        self.editing = None
        await self.conversation.new()
        self.status.docs = ""
        self.sub_title = "new chat"
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
        await self.conversation.remove_from(last)
        self.session.turns.remove(last)  # its history row stays; the new reply's row replaces it
        self.conversation.start_reply(user, replaces=last.mid)

    async def action_edit_last(self) -> None:
        if self.busy:
            return
        user = self.session.last("user")
        if user is None:
            self.notify("no message to edit yet", severity="warning")
            return
        self.editing = user
        self.chat_input.edit_message(user.content)
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
        """Ctrl+O: the picked file is attached, or, when a command that takes a path is being typed
        (``/summarize ``), added to it."""
        from lmassist.tui.screens.file_picker import FilePicker

        self.app.push_screen(FilePicker(), self._picked)

    def _picked(self, path: str | None) -> None:
        if not path:
            return
        parsed = slash.parse(self.chat_input.text)
        command = self.table.get(parsed[0]) if parsed else None
        if command is not None and command.takes_path and command.name != "attach":
            self.chat_input.insert_path(path)
        else:
            sources.attach_paths(self, [path])
            self.chat_input.focus()

    def on_citation_link_opened(self, event: CitationLink.Opened) -> None:
        """A citation under a /docs answer was clicked (or Enter pressed on it): show its passage."""
        try:
            sources.open_citation(self, event.docs, event.citation)
        except LMAssistError as e:
            self.notify(str(e), severity="error", timeout=8)

    def action_start_command(self, name: str) -> None:
        """``/name `` in the message box, for the arguments (a palette entry of a command that needs them)."""
        self.chat_input.start_command(name)

    def action_settings(self) -> None:
        from lmassist.tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen(self.session.settings), self._settings_saved)

    def _settings_saved(self, result: dict[str, Any] | None) -> None:
        if result is None:
            return
        kept = self.session.settings  # what the dialog does not edit (the /docs index, a template's stop strings)
        options = {**{k: v for k, v in (kept.get("options") or {}).items() if k not in OPTION_FIELDS},
                   **(result.get("options") or {})}
        try:
            self.session.set_settings({**kept, **result, "options": options})
        except LMAssistError as e:
            self.notify(str(e), severity="error")
            return
        self.notify("settings saved for this chat")

    def action_help(self) -> None:
        from lmassist.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.commands()))

    def action_export(self, fmt: str) -> None:
        """The palette's export: this conversation, to a file named after it in the current folder."""
        try:
            self.export_current(fmt)
        except LMAssistError as e:  # nothing to export yet is a warning; a file that cannot be written an error
            self.notify(str(e), severity="warning" if self.session.conversation is None else "error")

    # -- history ---------------------------------------------------------------------------------

    def _sidebar(self) -> HistorySidebar | None:
        from lmassist.tui.widgets.sidebar import HistorySidebar

        found = self.query(HistorySidebar)
        return found.first() if found else None

    def action_toggle_history(self) -> None:
        from lmassist.tui.widgets.sidebar import HistorySidebar

        sidebar = self._sidebar()
        if sidebar is None:
            sidebar = HistorySidebar(self.open_store(), id="sidebar", classes="-visible")
            self.query_one("#body", Horizontal).mount(sidebar, before=0)
            self.call_after_refresh(lambda: self.query_one("#history-search").focus())
            return
        visible = not sidebar.has_class("-visible")
        sidebar.set_class(visible, "-visible")
        if visible:
            sidebar.reload()
            self.query_one("#history-search").focus()
        else:
            self.chat_input.focus()

    def _reload_sidebar(self) -> None:
        sidebar = self._sidebar()
        if sidebar is not None and sidebar.has_class("-visible"):
            sidebar.reload()

    def _show_title(self) -> None:
        conv = self.session.conversation
        self.sub_title = conv.display_title if conv is not None else ""

    @on(Conversation.ReplyDone)
    def _after_reply(self) -> None:
        self._show_title()
        self._reload_sidebar()

    def history_changed(self, cid: str) -> None:
        """Conversation ``cid`` was renamed: show its new title if it is the open one."""
        if self.session.conversation is not None and self.session.conversation.id == cid:
            self.session.refresh()
            self._show_title()
        self._reload_sidebar()

    async def on_history_sidebar_selected(self, event: HistorySidebar.Selected) -> None:
        await self.resume(event.cid)

    async def on_history_sidebar_changed(self, event: HistorySidebar.Changed) -> None:
        current = self.session.conversation
        if event.deleted and current is not None and current.id == event.cid:
            await self.action_new_chat()
        elif not event.deleted:
            self.history_changed(event.cid)

    async def resume(self, cid: str) -> None:
        """Show a past conversation and continue it, on the model it last used."""
        if self.busy:
            self.notify("press Esc to stop the reply first", severity="warning")
            return
        if not await self.conversation.load(cid):
            return
        self.editing = None
        self._show_title()
        self.status.docs = self.session.docs or ""
        model = self.session.conversation.model
        if model and model != self.model_name:
            self.switch_model(model)
        self.chat_input.focus()

    def export_current(self, fmt: str, path: str | None = None) -> Path:
        """Write this conversation to a file and say where (``/export``, the palette)."""
        from lmassist.tui.widgets.sidebar import export_conversation

        if self.session.conversation is None:
            raise LMAssistError("nothing to export yet: send a message first")
        target = export_conversation(self.open_store(), self.session.conversation.id, fmt, path)
        self.notify(f"exported to {target}")
        return target
