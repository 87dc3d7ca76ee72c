"""The chat app's command table: slash words, keys, the palette and /help all come from it.

The real app runs (``App.run_test``) on a scripted model, with a task plugin whose name clashes with
a built-in command beside one that does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_tui import toasts

from lmassist import hookimpl
from lmassist.generation import Model, ModelInfo, StreamRequest
from lmassist.plugins import PluginManager
from lmassist.registry import Registry
from lmassist.store import Store
from lmassist.tui.app import LMAssistApp
from lmassist.tui.commands import BUILTINS, FOOTER, HELP_KEYS, PALETTE, CommandTable, help_keys
from lmassist.tui.screens.chat import ChatScreen
from lmassist.tui.session import ModelHost
from lmassist.tui.widgets.message import InfoView

SIZE = (110, 40)


class EchoModel(Model):
    def __init__(self) -> None:
        self.info = ModelInfo(name="fake:echo", backend="fake", context_length=2048, chat_template=True)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        request.prompt_tokens = 4
        yield "hello"
        request.finish_reason = "eos"

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)


class NamedTask:
    """A task plugin as the task contract describes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.summary = f"the plugin's {name}"
        self.slash_usage = f"/{name} TEXT"

    def run_slash(self, model: Any, argline: str, progress: Any = None, cancel: Any = None) -> str:
        return f"{self.name}: {argline}"


class ClashPlugin:
    @hookimpl
    def register_tasks(self, register: Callable[[Any], None]) -> None:
        register(NamedTask("help"))  # a built-in command has this name: left out, said once
        register(NamedTask("shout"))


@pytest.fixture
def app(lmassist_home: Any) -> Iterator[LMAssistApp]:
    store = Store()
    pm = PluginManager(load_entry_points=False)
    pm.register(ClashPlugin(), name="clash-plugin")
    host = ModelHost(registry_factory=lambda: Registry(pm), preloaded=[EchoModel()])
    yield LMAssistApp(model="fake:echo", store=store, host=host)
    store.close()


async def ready(pilot: Any) -> ChatScreen:
    chat = pilot.app.chat
    while not (chat.model_ready and chat.tasks):
        await pilot.pause(0.05)
    return chat


def test_every_command_has_a_handler_and_every_face_lists_known_ones() -> None:
    names = [c.name for c in BUILTINS]
    assert len(names) == len(set(names))
    for command in BUILTINS:
        if command.is_slash:
            assert command.run is not None or command.action, command
        if command.action:
            owner, action = (LMAssistApp, command.action[4:]) if command.action.startswith("app.") else (
                ChatScreen, command.action)
            assert callable(getattr(owner, "action_" + action.split("(")[0], None)), command
        for entry in command.palette:
            target = (entry.action or command.action).split("(")[0].removeprefix("app.")
            assert hasattr(ChatScreen, "action_" + target) or hasattr(LMAssistApp, "action_" + target), entry
    keyed = {c.name for c in BUILTINS if c.key}
    assert set(HELP_KEYS) == keyed  # every key is in /help, once
    assert set(FOOTER) == {c.name for c in BUILTINS if c.key and c.bind and not c.action.startswith("app.")}
    assert set(PALETTE) == {c.name for c in BUILTINS if c.palette}


def test_the_bindings_are_the_tables_keys() -> None:
    bound = [(b.key, b.action, b.description) for b in ChatScreen.BINDINGS]
    by_name = {c.name: c for c in BUILTINS}
    assert bound == [(by_name[n].key, by_name[n].action, by_name[n].label) for n in FOOTER]
    assert [(b.key, b.action, b.priority) for b in LMAssistApp.BINDINGS] == [("ctrl+q", "quit", True)]


def test_a_task_named_like_a_builtin_is_left_out_once() -> None:
    table = CommandTable()
    tasks = {"help": NamedTask("help"), "shout": NamedTask("shout")}
    said = table.set_tasks(tasks)
    assert len(said) == 1 and "/help" in said[0]
    assert table.set_tasks(tasks) == []  # the same clash again: not repeated
    assert list(table.tasks) == ["shout"]
    assert [c.name for c in table.slash_commands()].count("help") == 1
    assert table.get("help").task is None and table.get("shout").task is tasks["shout"]


async def test_help_shows_the_keys_the_screen_binds(app: LMAssistApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        chat.chat_input.text = "/help"
        await pilot.press("enter")
        await pilot.pause(0.1)
        shown = chat.query(InfoView).last().source
        bindings = {**app.active_bindings}
        for command in BUILTINS:
            if not (command.key and command.bind):
                continue
            assert f"| `{command.key_display}` | {command.key_help or command.summary} |" in shown, command.name
            active = bindings[command.key].binding
            assert active.action == command.action.removeprefix("app.") and active.description == command.label
        assert len(help_keys()) == len(HELP_KEYS)
        assert "/shout TEXT" in shown and "the plugin's help" not in shown


async def test_palette_entries_come_from_the_table(app: LMAssistApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        commands = list(app.get_system_commands(chat))
        titles = [c.title for c in commands]
        ours = [entry.title for _, entry in chat.table.palette()]
        assert [t for t in titles if t in ours] == ours
        assert "Run task: shout" in titles and "Run task: help" not in titles
        assert titles.index("Switch model") < titles.index("Run task: shout") < titles.index("Attach a file…")
        help_entry = next(c for c in commands if c.title == "Help")
        await help_entry.callback()
        await pilot.pause(0.1)
        assert app.screen.query("#help")
        await pilot.press("escape")
        await pilot.pause()
        task_entry = next(c for c in commands if c.title == "Run task: shout")
        task_entry.callback()
        assert chat.chat_input.text == "/shout "


async def test_the_clashing_task_is_reported_once_and_the_builtin_runs(app: LMAssistApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        chat = await ready(pilot)
        await pilot.pause(0.1)
        line = "the task /help is not available"
        assert toasts(app, line) == 1
        chat.switch_model("fake:echo")  # plugins are read again on every load: not said again
        while chat.status.state == "loading":
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        assert toasts(app, line) == 1
        chat.chat_input.text = "/help"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert chat.query(InfoView).last().source.startswith("# Help")
        assert not chat.views()  # the task did not run
        chat.chat_input.text = "/shout hi"
        await pilot.press("enter")
        while chat.busy or len(chat.views()) < 2:
            await pilot.pause(0.05)
        assert chat.views()[-1].turn.content == "shout: hi"
