"""Snapshots of the main screens (pytest-textual-snapshot). Update with ``--snapshot-update``.

Deterministic by construction: a scripted model instead of the real one (no sampled text), history
written by the test with fixed content, and the sidebar's dates replaced by a fixed string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lmassist.generation import Model, ModelInfo, StreamRequest
from lmassist.plugins import PluginManager
from lmassist.registry import Registry
from lmassist.store import Store
from lmassist.tui.app import LMAssistApp
from lmassist.tui.session import ModelHost
from lmassist.tui.widgets import sidebar

SIZE = (100, 32)
REPLY = "Here is a plan:\n\n1. **Read** the notes\n2. Write a `summary`\n\n```python\nprint('done')\n```\n"


class ScriptedModel(Model):
    """Always replies with the same Markdown, one word per token."""

    def __init__(self) -> None:
        self.info = ModelInfo(name="fake:scripted", backend="fake", context_length=2048, chat_template=True)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        request.prompt_tokens = 12
        yield from (w + " " for w in REPLY.split(" "))
        request.finish_reason = "eos"

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[LMAssistApp]:
    monkeypatch.setattr(sidebar, "describe", lambda conv: f"today · {conv.message_count} msgs")
    store = Store()
    conv = store.new_conversation(model="fake:scripted")
    store.add_message(conv.id, "user", "How do I summarize my meeting notes?")
    store.add_message(conv.id, "assistant", REPLY, model="fake:scripted")
    other = store.new_conversation()
    store.add_message(other.id, "user", "Translate the README to French")
    pm = PluginManager(load_entry_points=False)
    host = ModelHost(registry_factory=lambda: Registry(pm), preloaded=[ScriptedModel()])
    app = LMAssistApp(model="fake:scripted", store=store, host=host)
    app.snapshot_cid = conv.id  # type: ignore[attr-defined]
    yield app
    store.close()


async def _ready(pilot: Any) -> None:
    chat = pilot.app.chat
    while not (chat.model_ready and chat.tasks):
        await pilot.pause(0.05)
    chat.chat_input.cursor_blink = False  # a blinking cursor would make the snapshot depend on timing
    await pilot.pause(0.1)


async def _with_conversation(pilot: Any) -> None:
    await _ready(pilot)
    await pilot.app.chat.resume(pilot.app.snapshot_cid)
    await pilot.pause(0.2)


def test_empty_chat(snap_compare: Any, app: LMAssistApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_conversation_with_markdown(snap_compare: Any, app: LMAssistApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_with_conversation)


def test_history_sidebar_search(snap_compare: Any, app: LMAssistApp) -> None:
    async def run(pilot: Any) -> None:
        await _with_conversation(pilot)
        await pilot.press("ctrl+s")
        # The sidebar mounts on first use: type only once its search box has the focus, or the keys
        # would go to the message box on a slow machine.
        while getattr(pilot.app.focused, "id", None) != "history-search":
            await pilot.pause(0.05)
        pilot.app.focused.cursor_blink = False  # a blinking cursor would make the snapshot depend on timing
        await pilot.press(*"summarize")
        while pilot.app.focused.value != "summarize":
            await pilot.pause(0.05)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_help_overlay(snap_compare: Any, app: LMAssistApp) -> None:
    async def run(pilot: Any) -> None:
        await _ready(pilot)
        await pilot.press("f1")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_settings_screen(snap_compare: Any, app: LMAssistApp) -> None:
    async def run(pilot: Any) -> None:
        await _ready(pilot)
        await pilot.press("f3")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_slash_completion_and_error(snap_compare: Any, app: LMAssistApp) -> None:
    async def run(pilot: Any) -> None:
        await _ready(pilot)
        chat = pilot.app.chat
        chat.chat_input.text = "/model no-such-model"
        await pilot.press("enter")
        while not chat.query("ErrorView"):
            await pilot.pause(0.05)
        await pilot.press(*"/sum")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_sidebar_open_at_80x24_footer(snap_compare: Any, app: LMAssistApp) -> None:
    """The footer at 80 columns with the sidebar's keys added: cut at the edge, no stray character
    beside the command palette key (Textual's compact margin showed one there)."""

    async def run(pilot: Any) -> None:
        await _ready(pilot)
        await pilot.press("ctrl+s")
        while getattr(pilot.app.focused, "id", None) != "history-search":
            await pilot.pause(0.05)
        pilot.app.focused.cursor_blink = False
        await pilot.pause(0.2)
        last = pilot.app.screen._compositor.render_strips()[-1].text
        assert last.endswith("\N{LEFT ONE EIGHTH BLOCK}^p palette"), last

    assert snap_compare(app, terminal_size=(80, 24), run_before=run)


def test_attachment_chips_and_citations(snap_compare: Any, app: LMAssistApp) -> None:
    """A resumed chat that attached a file (its chip above the message) and asked a folder index
    (/docs: the status bar names it, the answer's citations are links under it)."""
    from lmassist.attachments import Attachment

    store = app.store
    conv = store.new_conversation(model="fake:scripted", settings={"docs": "notes"})
    office = Attachment.from_text("notes/office.md", "# Office\n\nThe guest wifi password is tangerine-42.\n")
    store.add_message(conv.id, "user", "What is the wifi password?", attachments=[office])
    store.add_message(conv.id, "assistant", "The password is **tangerine-42** [1].", model="fake:scripted",
                      options={"docs": "notes", "citations": [{"path": "office.md", "line": 3, "end_line": 3},
                                                              {"path": "it/network.md", "line": 12, "end_line": 20}]})

    async def run(pilot: Any) -> None:
        await _ready(pilot)
        await pilot.app.chat.resume(conv.id)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)
