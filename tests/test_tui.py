"""Pilot tests of the chat app on the real default model: every flow of issue 7, driven by keys.

Replies are kept short (a few dozen tokens, greedy) so the whole file runs in well under a minute
on two shared cores; the cancel test asks for a long reply on purpose and stops it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lmassist import hookimpl
from lmassist.config import Settings
from lmassist.generation import CancelToken, LMAssistError, ModelSpec
from lmassist.plugins import PluginManager
from lmassist.registry import Registry
from lmassist.store import Store
from lmassist.tui.app import DeferredStore, LMAssistApp
from lmassist.tui.screens.chat import ChatScreen
from lmassist.tui.session import ModelHost
from lmassist.tui.widgets.message import ErrorView, InfoView

SHORT = {"max_new_tokens": 16, "temperature": 0, "seed": 1}
SIZE = (110, 40)


class UpperTask:
    """A task plugin as the task contract describes it: reads a file, reports progress per chunk."""

    name = "upper"
    summary = "shout a file back, chunk by chunk"
    slash_usage = "/upper PATH"

    def __init__(self) -> None:
        self.progress_seen: list[tuple[int, int | None]] = []

    def run_slash(self, model: Any, argline: str, progress: Callable[..., None] | None = None,
                  cancel: CancelToken | None = None) -> str:
        path = Path(argline.strip())
        if not path.is_file():
            raise LMAssistError(f"no such file: {argline.strip()}")
        lines = path.read_text().splitlines()
        out = []
        for i, line in enumerate(lines, 1):
            out.append(line.upper())
            if progress:
                progress(i, len(lines))
                self.progress_seen.append((i, len(lines)))
        return "## Shouted\n\n" + "\n\n".join(out) + f"\n\n*by {model.info.name}*"


class UpperPlugin:
    def __init__(self, gguf: Path) -> None:
        self.task = UpperTask()
        self.gguf = gguf

    @hookimpl
    def register_tasks(self, register: Callable[[Any], None]) -> None:
        register(self.task)

    @hookimpl
    def register_models(self, register: Callable[[Any], None]) -> None:
        # The default GGUF under a second name: a real second model to switch to mid-conversation.
        register(ModelSpec("llamacpp", "smollm-twin", source=str(self.gguf), description="test twin"))


@pytest.fixture
def plugin(default_gguf: Path) -> UpperPlugin:
    return UpperPlugin(default_gguf)


@pytest.fixture(scope="module")
def smollm1(default_gguf: Path, tmp_path_factory: Any) -> Any:
    """The real default model, on one thread: on a shared, oversubscribed machine llama.cpp with
    two threads can be many times slower than with one (its threads spin-wait on each other)."""
    settings = Settings(tmp_path_factory.mktemp("settings") / "settings.json")
    model = Registry(PluginManager(load_entry_points=False), settings).load(
        "llamacpp:smollm2-135m-instruct", threads=1)
    yield model
    model.close()


@pytest.fixture
def make_app(smollm1: Any, plugin: UpperPlugin, lmassist_home: Path) -> Callable[..., LMAssistApp]:
    hosts: list[ModelHost] = []
    stores: list[Store] = []

    Settings().set("llamacpp.threads", 1)  # for the models the app loads itself (the twin)

    def make(**kwargs: Any) -> LMAssistApp:
        pm = PluginManager(load_entry_points=False)  # built-ins (tasks included), no third parties
        pm.register(plugin, name="test-plugin")
        host = ModelHost(registry_factory=lambda: Registry(pm), preloaded=[smollm1])
        store = Store()
        hosts.append(host)
        stores.append(store)
        return LMAssistApp(model=smollm1.info.name, store=store, host=host, **kwargs)

    yield make
    for host in hosts:
        host.close()
    for store in stores:
        store.close()


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def ready(pilot: Any, options: dict[str, Any] | None = None) -> ChatScreen:
    chat = pilot.app.chat
    await wait_for(pilot, lambda: chat.model_ready and chat.tasks, what="model and plugins")
    chat.session.set_settings({"options": options or SHORT})
    return chat


async def say(pilot: Any, text: str, wait: bool = True) -> None:
    chat = pilot.app.chat
    chat.chat_input.focus()
    chat.chat_input.text = text
    await pilot.press("enter")
    if wait:
        await pilot.pause(0.05)
        await wait_for(pilot, lambda: not chat.busy, what=f"reply to {text!r}")
        await pilot.pause(0.1)


def errors(chat: ChatScreen) -> list[str]:
    return [e.message for e in chat.query(ErrorView)]


def toasts(app: LMAssistApp, text: str) -> int:
    """How many notifications on screen say ``text``."""
    return sum(text in str(t.render()) for t in app.screen.query("Toast"))


async def test_send_streams_reply_and_saves_history(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        assert chat.status.state == "idle"
        await say(pilot, "Say hello in one short sentence.")
        views = chat.views()
        assert [v.turn.role for v in views] == ["user", "assistant"]
        reply = views[1]
        assert reply.turn.status == "complete"
        assert reply.turn.content.strip()
        assert reply.turn.model == "llamacpp:smollm2-135m-instruct"
        assert "llamacpp:smollm2-135m-instruct" in str(reply.query_one(".message-header").render())
        assert chat.status.tokens_per_s and chat.status.ttft_s is not None
        assert chat.status.context_used and chat.status.context_length
        stored = app.store.messages(chat.session.conversation.id)
        assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
        assert stored[1].content == reply.turn.content
        assert stored[1].model == "llamacpp:smollm2-135m-instruct"
        assert stored[1].stats["generated_tokens"] >= 1
        assert app.store.get(chat.session.conversation.id).title == "Say hello in one short sentence."


async def test_enter_sends_and_ctrl_j_adds_a_line(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await pilot.press("h", "i", "ctrl+j", "t", "h", "e", "r", "e")
        assert chat.chat_input.text == "hi\nthere"
        assert not chat.views()
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat.views() and not chat.busy, what="reply")
        assert chat.views()[0].turn.content == "hi\nthere"
        assert chat.chat_input.text == ""


async def test_escape_cancels_and_keeps_partial_reply(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot, {"max_new_tokens": 2000, "temperature": 0.8, "seed": 3})
        await say(pilot, "Write a very long story about a dragon, with many chapters.", wait=False)
        await wait_for(pilot, lambda: len(chat.views()) == 2, what="reply view")
        reply = chat.views()[1]
        mid = reply.turn.mid
        # Let a few tokens stream (the machine may be slow and shared), then stop it.
        await wait_for(pilot, lambda: len(reply.source.split()) >= 3, what="streaming")
        assert chat.busy
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.busy, timeout=30, what="cancel")
        assert reply.turn.status == "interrupted"
        assert reply.has_class("-interrupted")
        assert "interrupted" in str(reply.query_one(".message-header").render())
        stored = app.store.message(mid)
        assert stored.status == "interrupted"
        assert stored.content == reply.turn.content and stored.content.strip()
        assert stored.stats["stop_reason"] == "cancelled"
        assert stored.stats["generated_tokens"] < 2000


async def test_regenerate_and_edit_last(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot, {"max_new_tokens": 12, "temperature": 1.0, "seed": 7})
        await say(pilot, "Name a colour.")
        first = chat.views()[1].turn
        await pilot.press("ctrl+r")
        await pilot.pause(0.05)
        await wait_for(pilot, lambda: not chat.busy, what="regenerated reply")
        views = chat.views()
        assert [v.turn.role for v in views] == ["user", "assistant"]
        second = views[1].turn
        assert second.mid != first.mid and second.status == "complete"
        cid = chat.session.conversation.id
        assert app.store.message(second.mid).options["replaces"] == first.mid

        await pilot.press("ctrl+g")
        assert chat.chat_input.text == "Name a colour."
        chat.chat_input.text = "Name a fruit."
        await pilot.press("enter")
        await pilot.pause(0.05)
        await wait_for(pilot, lambda: not chat.busy, what="reply to the edit")
        assert [v.turn.content for v in chat.views()][0] == "Name a fruit."
        assert len(chat.views()) == 2
        # Resuming shows the same thread: replaced rows stay in the history but not in the view.
        await chat.resume(cid)
        await pilot.pause()
        assert [v.turn.content for v in chat.views()][0] == "Name a fruit."
        assert len(chat.views()) == 2
        assert len(app.store.messages(cid)) == 5

        await pilot.press("f4")
        assert app.clipboard == chat.views()[1].turn.content


async def test_switch_model_mid_conversation(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, "Hi!")
        await say(pilot, "/model smollm-twin")
        await wait_for(pilot, lambda: chat.model_name == "llamacpp:smollm-twin" and chat.status.state == "idle",
                       what="model switch")
        assert chat.status.model == "llamacpp:smollm-twin"
        await say(pilot, "And again?")
        replies = [v.turn for v in chat.views() if v.turn.role == "assistant"]
        assert [r.model for r in replies] == ["llamacpp:smollm2-135m-instruct", "llamacpp:smollm-twin"]
        stored = [m.model for m in app.store.messages(chat.session.conversation.id) if m.role == "assistant"]
        assert stored == ["llamacpp:smollm2-135m-instruct", "llamacpp:smollm-twin"]
        assert any("smollm-twin" in str(v.query_one(".message-header").render()) for v in chat.views())

        # The palette's model picker lists both, and picking one switches.
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: app.screen is not chat, what="model palette")
        await pilot.press(*"smollm2")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: chat.model_name == "llamacpp:smollm2-135m-instruct", what="switch back")


async def test_unknown_model_and_missing_file_are_errors_in_the_chat(make_app: Any, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, "/model no-such-model")
        await wait_for(pilot, lambda: errors(chat), what="error")
        assert "unknown model 'no-such-model'" in errors(chat)[0]
        assert chat.model_name == "llamacpp:smollm2-135m-instruct"
        await wait_for(pilot, lambda: chat.status.state == "idle", what="idle")
        # The status bar names the model still answering, not the name that failed (issue 14.15).
        shown = str(chat.status.render())
        assert shown.startswith("llamacpp:smollm2-135m-instruct") and "no-such-model" not in shown

        await say(pilot, f"/upper {tmp_path / 'missing.txt'}")
        assert any("no such file" in e for e in errors(chat))
        await say(pilot, "/nosuchcommand x")
        assert any("unknown command /nosuchcommand" in e for e in errors(chat))
        await say(pilot, "/set temperature hot")
        assert any("needs a number" in e for e in errors(chat))
        assert app.is_running


async def test_a_failed_over_long_message_does_not_erase_the_context(make_app: Any, smollm1: Any) -> None:
    """The message that was too long is shown with its error, but not sent again: the next reply
    still sees the exchange before it (issue 14.7)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, "My name is Ada. Say hi.")
        await say(pilot, "Summarize: " + "lorem ipsum dolor " * 3000)
        await wait_for(pilot, lambda: errors(chat), what="the too-long error")
        assert "tokens" in errors(chat)[-1]
        await say(pilot, "What is my name?")
        reply = chat.views()[-1].turn
        assert reply.role == "assistant" and reply.status == "complete", reply
        asked = chat.session.context(smollm1, upto=chat.session.last("user"))
        assert [m.role for m in asked] == ["user", "assistant", "user"]
        assert asked[0].content == "My name is Ada. Say hi." and asked[-1].content == "What is my name?"
        first = chat.views()[1].turn
        assert first.role == "assistant"
        assert reply.stats["prompt_tokens"] > first.stats["prompt_tokens"] + 5  # the first exchange was in it


async def test_slash_task_on_a_file_with_progress(make_app: Any, plugin: UpperPlugin, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("first line\nsecond line\nthird line\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, f"/upper {notes}")
        views = chat.views()
        assert [v.turn.kind for v in views] == ["task", "task"]
        assert "SECOND LINE" in views[1].turn.content
        assert views[1].turn.status == "complete"
        assert plugin.task.progress_seen == [(1, 3), (2, 3), (3, 3)]
        assert "SECOND LINE" in views[1].source
        stored = app.store.messages(chat.session.conversation.id)
        assert stored[0].options == {"task": "upper"} and "SECOND LINE" in stored[1].content
        # Task turns are not part of what the model sees in the chat.
        assert chat.session.context(app.host.loaded[chat.model_name]) == []


async def test_plugin_task_shows_up_everywhere(make_app: Any, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        assert "upper" in [c.name for c in chat.commands()]
        # Completion: the command name, then the path.
        await pilot.press("/", "u", "p")
        assert chat.chat_input.suggestion == "per "
        await pilot.press("tab")
        assert chat.chat_input.text == "/upper "
        chat.chat_input.clear_text()
        chat.chat_input.insert(f"/upper {tmp_path}/da")
        chat.chat_input.update_suggestion()
        assert chat.chat_input.suggestion == "ta.txt"
        chat.chat_input.clear_text()
        # Help lists it, and so does the command palette.
        await say(pilot, "/help")
        assert any("/upper PATH" in v.source for v in chat.query(InfoView))
        titles = [c.title for c in app.get_system_commands(chat)]
        assert "Run task: upper" in titles and "New chat" in titles and "Plugins" in titles


async def test_history_search_resume_rename_delete_export(make_app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app()
    store = app.store
    old = store.new_conversation(model="llamacpp:smollm2-135m-instruct")
    store.add_message(old.id, "user", "Tell me about the zebra crossing")
    store.add_message(old.id, "assistant", "A zebra crossing is a striped road crossing.",
                      model="llamacpp:smollm2-135m-instruct")
    other = store.new_conversation()
    store.add_message(other.id, "user", "Something about pancakes")
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: chat.query("#history-search") and app.focused is chat.query_one("#history-search"),
                       what="sidebar")
        await pilot.press(*"zebra")
        await pilot.pause(0.1)
        option_list = chat.query_one("#history-list")
        assert option_list.option_count == 1
        await pilot.press("enter")  # to the list
        await pilot.press("enter")  # resume the hit
        await wait_for(pilot, lambda: chat.session.conversation is not None, what="resume")
        assert chat.session.conversation.id == old.id
        assert [v.turn.content for v in chat.views()][1].startswith("A zebra crossing")

        # Continue the resumed conversation: the reply is added to it.
        await say(pilot, "Thanks!")
        assert len(store.messages(old.id)) == 4

        # Export from the sidebar (F6 md, F7 json) and with /export.
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+s")
        chat.query_one("#history-search").value = ""
        await pilot.pause(0.1)
        chat.query_one("#history-list").focus()
        chat.query_one("#history-list").highlighted = 0  # most recent: the one we continued
        await pilot.press("f6")
        await pilot.press("f7")
        await pilot.pause(0.1)
        exported = sorted(p.name for p in tmp_path.glob("lmassist-*.*"))
        assert len(exported) == 2, exported
        md = next(tmp_path.glob("lmassist-*.md")).read_text()
        assert "zebra crossing" in md and "## User" in md
        data = json.loads(next(tmp_path.glob("lmassist-*.json")).read_text())
        assert data["id"] == old.id and len(data["messages"]) == 4
        await say(pilot, f"/export json {tmp_path / 'out.json'}")
        assert json.loads((tmp_path / "out.json").read_text())["id"] == old.id

        # Rename (F2) and delete (Del, confirmed) from the sidebar.
        chat.query_one("#history-list").focus()
        chat.query_one("#history-list").highlighted = 0
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.query("#prompt-input"), what="rename prompt")
        app.screen.query_one("#prompt-input").value = "Zebras"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert store.get(old.id).title == "Zebras"
        assert chat.sub_title == "Zebras"
        chat.query_one("#history-list").focus()
        chat.query_one("#history-list").highlighted = 0
        await pilot.press("delete")
        await wait_for(pilot, lambda: app.screen is not chat, what="confirm")
        await pilot.press("y")
        await pilot.pause(0.2)
        assert [c.id for c in store.conversations()] == [other.id]
        assert chat.session.conversation is None and not chat.views()


async def test_settings_are_saved_with_the_conversation(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, "/system You answer like a pirate.")
        await say(pilot, "/set max_new_tokens 8")
        await say(pilot, "Hello")
        cid = chat.session.conversation.id
        settings = app.store.get(cid).settings
        assert settings["system"] == "You answer like a pirate."
        assert settings["options"]["max_new_tokens"] == 8
        reply = app.store.messages(cid)[-1]
        assert reply.stats["generated_tokens"] <= 8
        # The settings screen edits them.
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen.query("#opt-temperature"), what="settings screen")
        app.screen.query_one("#opt-temperature").value = "0.3"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.store.get(cid).settings["options"]["temperature"] == 0.3
        assert app.store.get(cid).settings["system"] == "You answer like a pirate."


async def test_help_overlay_palette_and_plugins(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.query("#help"), what="help")
        # Every row of the tables as drawn has its two cells; a usage with "|" stays in one.
        from textual.widgets._markdown import MarkdownTable

        await wait_for(pilot, lambda: len(app.screen.query(MarkdownTable)) == 2, what="help tables")
        rows = [[c.plain for c in row] for t in app.screen.query(MarkdownTable) for row in t._rows]
        assert rows and all(len(row) == 2 for row in rows), rows
        assert ["/export md|json [PATH]", "save this chat as Markdown or JSON"] in rows
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is chat
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen is not chat, what="palette")
        await pilot.press(*"plugins")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#plugins"), what="plugins screen")
        source = app.screen.query_one("#plugins").query_one("Markdown").source
        assert "test-plugin" in source and "/upper" in source
        await pilot.press("escape")
        # Every chat binding is shown in the footer.
        assert all(b.show for b in ChatScreen.BINDINGS)


async def test_real_summarize_task_on_a_file(make_app: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(
        "# Team meeting\n\nWe agreed to ship the new search feature on Friday. Alice will write the "
        "release notes and Bob will fix the two remaining bugs in the export code.\n"
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        assert "summarize" in chat.tasks  # the built-in task plugin, through the registry
        await say(pilot, f"/summarize {notes} --length short")
        assert not errors(chat)
        views = chat.views()
        assert views[-1].turn.kind == "task" and views[-1].turn.status == "complete"
        assert views[-1].turn.content.strip()
        stored = app.store.messages(chat.session.conversation.id)
        assert stored[-1].content == views[-1].turn.content
        await say(pilot, f"/summarize {tmp_path / 'nope.md'}")
        assert errors(chat)


async def test_long_conversation_shows_only_recent_messages(make_app: Any) -> None:
    from lmassist.tui.screens.chat import MAX_SHOWN

    app = make_app()
    conv = app.store.new_conversation()
    for i in range(MAX_SHOWN // 2 + 5):
        app.store.add_message(conv.id, "user", f"question {i}")
        app.store.add_message(conv.id, "assistant", f"answer {i}", model="llamacpp:smollm2-135m-instruct")
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await chat.resume(conv.id)
        await pilot.pause()
        views = chat.views()
        assert len(views) == MAX_SHOWN and views[-1].turn.content == f"answer {MAX_SHOWN // 2 + 4}"
        assert "10 earlier messages" in str(chat.query_one("#hidden-note").render())
        assert len(chat.session.turns) == MAX_SHOWN + 10  # the model still sees the whole thread
        await say(pilot, "one more")
        assert len(chat.views()) == MAX_SHOWN
        assert "12 earlier messages" in str(chat.query_one("#hidden-note").render())


def _own_store_app(smollm1: Any, plugin: UpperPlugin) -> tuple[LMAssistApp, ModelHost]:
    """The app as ``lmassist`` opens it: no store handed in, so it opens the user's own history."""
    pm = PluginManager(load_entry_points=False)
    pm.register(plugin, name="test-plugin")
    host = ModelHost(registry_factory=lambda: Registry(pm), preloaded=[smollm1])
    return LMAssistApp(model=smollm1.info.name, host=host), host


async def test_history_opens_after_the_first_frame_and_keeps_the_chat(
        smollm1: Any, plugin: UpperPlugin, lmassist_home: Path) -> None:
    app, host = _own_store_app(smollm1, plugin)
    assert isinstance(app.store, DeferredStore) and not app.store.is_open  # nothing opened before the app runs
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.store.is_open, what="the history to open")
        chat = await ready(pilot)
        await say(pilot, "Say hi.")
        cid = chat.session.conversation.id
    host.close()
    with Store(lmassist_home / "data" / "history.db") as store:
        assert [m.role for m in store.messages(cid)] == ["user", "assistant"]


async def test_unreadable_history_closes_the_app_with_its_error(
        smollm1: Any, plugin: UpperPlugin, lmassist_home: Path) -> None:
    db = lmassist_home / "data" / "history.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text("not a database\n")
    app, host = _own_store_app(smollm1, plugin)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.startup_error is not None, what="the history error")
        await pilot.pause(0.1)
    host.close()
    assert app.return_code == 1
    assert isinstance(app.startup_error, LMAssistError) and "not an SQLite database" in str(app.startup_error)
    assert db.read_text() == "not a database\n"  # left as it was


async def test_a_key_that_needs_the_unreadable_history_closes_the_app_with_its_error(
        smollm1: Any, plugin: UpperPlugin, lmassist_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+S (history) pressed before the background open has failed: the same one-line exit, no traceback."""
    db = lmassist_home / "data" / "history.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text("not a database\n")
    monkeypatch.setattr(LMAssistApp, "_open_history", lambda self: None)  # the key comes first
    app, host = _own_store_app(smollm1, plugin)
    async with app.run_test(size=SIZE):
        # not pilot.press/pause: they wait for a screen that the exit takes away
        app.simulate_key("ctrl+s")  # the history sidebar
        for _ in range(600):
            if app.startup_error is not None:
                break
            await asyncio.sleep(0.05)
    host.close()
    assert app.return_code == 1
    assert isinstance(app.startup_error, LMAssistError) and "not an SQLite database" in str(app.startup_error)


def test_deferred_store_opens_once_and_not_after_close(tmp_path: Path) -> None:
    opened: list[Store] = []

    def factory() -> Store:
        opened.append(Store(tmp_path / "history.db"))
        return opened[-1]

    lazy = DeferredStore(factory)
    assert not lazy.is_open
    conv = lazy.open().new_conversation()  # the first use opens it
    assert lazy.is_open and lazy.open().get(conv.id).id == conv.id and len(opened) == 1
    lazy.close()
    with pytest.raises(LMAssistError):
        lazy.open()
    unused = DeferredStore(factory)
    unused.close()  # closing one never opened opens nothing
    assert len(opened) == 1
