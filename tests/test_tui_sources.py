"""The chat app's own-files commands on the real default model, real files and a real folder index:
``/docs NAME`` (answers with clickable ``path:line`` citations that open the passage), ``/template
NAME``, ``/attach`` with the file picker and chips, and ``/summarize DIR`` sent to the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_tui import SIZE, ready, say, wait_for

from lmassist.docindex.index import DocIndex
from lmassist.tasks.docs_answer import NO_ANSWER
from lmassist.templates import Template, save
from lmassist.tui.screens.passage import PassageScreen
from lmassist.tui.widgets.citations import CitationLink
from lmassist.tui.widgets.message import ErrorView, InfoView

pytest_plugins = ("test_tui",)  # its fixtures: the real default model, the app on it (make_app)

BUDGET_NOTE = (
    "# Council meeting, 4 March\n"
    "\n"
    "Present: Helen Park (chair), David Okafor, Sam Lee.\n"
    "\n"
    "## Budget\n"
    "\n"
    "Councillor David Okafor will bring the budget to the next meeting.\n"
    "The library roof repair is postponed until the budget is approved.\n"
)
GARDEN_NOTE = "# Garden\n\nThe tomatoes need watering every morning in July.\nCompost goes in the north bed.\n"


def errors(chat: Any) -> list[str]:
    return [e.message for e in chat.query(ErrorView)]


def infos(chat: Any) -> list[str]:
    return [v.source for v in chat.query(InfoView)]


def type_in(chat: Any, text: str) -> None:
    """Text typed into the message box, the cursor at its end (where completion is offered)."""
    chat.chat_input.clear_text()
    chat.chat_input.insert(text)
    chat.chat_input.update_suggestion()


def notes_index(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "council.md").write_text(BUDGET_NOTE)
    (folder / "garden.md").write_text(GARDEN_NOTE)
    with DocIndex() as index:
        index.add("notes", folder)
    return folder


async def test_docs_answers_with_citations_that_open_the_passage(make_app: Any, tmp_path: Path) -> None:
    folder = notes_index(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot, {"max_new_tokens": 24, "temperature": 0, "seed": 1})
        # An unknown collection: one line in the chat, nothing else changes.
        await say(pilot, "/docs recipes")
        assert any("no folder index named 'recipes'" in e and "notes" in e for e in errors(chat))
        assert chat.session.docs is None and chat.status.docs == ""
        # Tab completes the collection's name.
        type_in(chat, "/docs no")
        assert chat.chat_input.suggestion == "tes "
        await say(pilot, "/docs notes")
        assert chat.session.docs == "notes" and "docs: notes" in str(chat.status.render())
        await say(pilot, "Who will bring the budget?")
        reply = chat.views()[-1]
        assert reply.turn.role == "assistant" and reply.turn.status == "complete" and reply.source.strip()
        links = list(reply.query(CitationLink))
        assert links and str(links[0].render()) == "council.md:5"  # the Budget section's first line
        stored = app.store.messages(chat.session.conversation.id)[-1]
        assert stored.options["docs"] == "notes" and stored.options["citations"][0]["path"] == "council.md"
        assert app.store.get(chat.session.conversation.id).settings["docs"] == "notes"
        # Enter on a focused citation opens the passage in its file, the cited lines selected.
        links[0].focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PassageScreen), what="passage dialog")
        await pilot.pause(0.1)
        passage = app.screen.passage
        assert passage.startswith("## Budget") and "David Okafor will bring the budget" in passage
        assert app.screen.path == folder / "council.md"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is chat, what="dialog closed")
        # A click opens it too.
        await pilot.click(CitationLink)
        await wait_for(pilot, lambda: isinstance(app.screen, PassageScreen), what="passage dialog by click")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is chat, what="dialog closed")
        # Nothing in the notes about it: the app says so without asking the model.
        await say(pilot, "When is Priya's birthday?")
        last = chat.views()[-1].turn
        assert last.content == NO_ANSWER and last.stats is None
        # The citations and the /docs state come back with the conversation.
        cid = chat.session.conversation.id
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        assert chat.status.docs == ""
        await chat.resume(cid)
        await pilot.pause(0.2)
        assert chat.status.docs == "notes"
        assert any(str(link.render()) == "council.md:5" for link in chat.query(CitationLink))
        await say(pilot, "/docs off")
        assert chat.session.docs is None and chat.status.docs == ""
        assert "docs" not in app.store.get(cid).settings


async def test_a_cited_file_that_is_gone_is_one_line_in_the_dialog(make_app: Any, tmp_path: Path) -> None:
    folder = notes_index(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        (folder / "garden.md").unlink()
        chat.on_citation_link_opened(CitationLink.Opened("notes", {"path": "garden.md", "line": 3, "end_line": 4}))
        await wait_for(pilot, lambda: isinstance(app.screen, PassageScreen), what="passage dialog")
        await pilot.pause(0.1)
        error = str(app.screen.query_one("#passage-error").render())
        assert "garden.md is gone" in error and "\n" not in error.strip()
        await pilot.press("escape")


async def test_summarize_a_folder_says_to_use_the_command_line(make_app: Any, tmp_path: Path) -> None:
    folder = tmp_path / "meetings"
    folder.mkdir()
    (folder / "a.md").write_text("We met.\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, f"/summarize {folder}")
        await say(pilot, f"/translate {folder} French")
        said = errors(chat)
        assert len(said) == 2
        assert f"lmassist summarize {folder} --out {folder}-summaries/" in said[0]
        assert f"lmassist translate {folder} --to LANG" in said[1]
        assert chat.session.conversation is None and not chat.views()  # nothing ran, nothing saved


async def test_template_applies_its_settings_with_completion(make_app: Any, tmp_path: Path) -> None:
    save(Template("terse", system="Answer in as few words as you can.", options={"max_new_tokens": 6},
                  description="short answers"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        type_in(chat, "/template te")
        assert chat.chat_input.suggestion == "rse "
        await say(pilot, "/template tesre")
        await wait_for(pilot, lambda: errors(chat), what="unknown template error")
        assert "unknown template 'tesre'" in errors(chat)[0] and "terse" in errors(chat)[0]
        await say(pilot, "/template terse")
        await wait_for(pilot, lambda: any("Template **terse** applied" in s for s in infos(chat)), what="applied")
        assert chat.session.system_prompt == "Answer in as few words as you can."
        assert chat.session.options().max_new_tokens == 6
        assert chat.session.options().temperature == 0  # the chat's own options stay under the template's
        await say(pilot, "What colour is the sky?")
        reply = app.store.messages(chat.session.conversation.id)[-1]
        assert reply.role == "assistant" and 0 < reply.stats["generated_tokens"] <= 6
        assert app.store.get(chat.session.conversation.id).settings["system"].startswith("Answer in as few")
