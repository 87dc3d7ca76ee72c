"""The chat app's own-files commands on the real default model, real files and a real folder index:
``/docs NAME`` (answers with clickable ``path:line`` citations that open the passage), ``/template
NAME``, ``/attach`` with the file picker and chips, and ``/summarize DIR`` sent to the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_tui
from test_tui import SIZE, ready, say, toasts, wait_for

from lmassist.docindex.index import DocIndex
from lmassist.tasks.docs_answer import NO_ANSWER
from lmassist.templates import Template, save
from lmassist.tui.screens.passage import PassageScreen
from lmassist.tui.widgets.citations import CitationLink
from lmassist.tui.widgets.message import ErrorView, InfoView

# test_tui's fixtures: the real default model (one thread), a task plugin, the app on them.
smollm1, plugin, make_app = test_tui.smollm1, test_tui.plugin, test_tui.make_app

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
        await wait_for(pilot, lambda: app.screen is chat, what="dialog closed")
        # A damaged index: one line when /docs names it, the chat goes on.
        from lmassist.docindex.index import default_path

        default_path().write_bytes(b"this is not a database" * 100)
        await say(pilot, "/docs notes")
        assert "is damaged" in errors(chat)[-1] and "--rebuild" in errors(chat)[-1] and chat.session.docs is None


async def test_summarize_a_folder_says_to_use_the_command_line(make_app: Any, tmp_path: Path) -> None:
    folder = tmp_path / "meetings"
    folder.mkdir()
    (folder / "a.md").write_text("We met.\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await say(pilot, f"/summarize {folder}")
        await say(pilot, f"/translate {folder} French")
        await say(pilot, f"/summarize {folder}/*.md")
        said = errors(chat)
        assert len(said) == 3
        assert f"lmassist summarize {folder} --out {folder}-summaries/" in said[0] and "is a folder" in said[0]
        assert f"lmassist translate {folder} --to LANG" in said[1]
        assert f"lmassist summarize '{folder}/*.md' --out" in said[2] and "is a glob" in said[2]
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
        # A template's files are attached; its model, the one in use, is kept.
        office = tmp_path / "office.md"
        office.write_text(WIFI_NOTE)
        save(Template("office", model=chat.model_name, attachments=(str(office),)))
        await say(pilot, "/template office")
        assert await attached_chips(pilot, chat, 1) == [f"{office} · 85 B · ~22 tokens"]
        assert chat.model_name == app.host.loaded[chat.model_name].info.name and not chat.status.detail
        assert chat.session.system_prompt.startswith("Answer in as few")  # no system prompt: the chat's stays


WIFI_NOTE = "# Office\n\nThe guest wifi network is called Harbour and its password is tangerine-42.\n"


async def attached_chips(pilot: Any, chat: Any, count: int) -> list[str]:
    from lmassist.tui.widgets.attachments import AttachmentChip

    await wait_for(pilot, lambda: len(chat.query(AttachmentChip)) >= count, what="attachment chips")
    return [c.label for c in chat.query(AttachmentChip)]


async def test_attach_files_folders_and_globs_the_model_reads_on_later_turns(make_app: Any, tmp_path: Path) -> None:
    from lmassist.attachments import chip, collect

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "office.md").write_text(WIFI_NOTE)
    (notes / "garden.md").write_text(GARDEN_NOTE)
    (notes / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        # Tab completes paths; a glob lists what it matches.
        type_in(chat, f"/attach {notes}/off")
        assert chat.chat_input.suggestion == "ice.md"
        type_in(chat, f"/attach {notes}/*.md")
        assert chat.chat_input.suggestion == ""
        await pilot.pause(0.1)
        assert str(chat.query_one("#candidates").render()).split() == [f"{notes}/garden.md", f"{notes}/office.md"]
        chat.chat_input.clear_text()
        # Bad input: one line, nothing attached.
        await say(pilot, f"/attach {notes}/missing.md")
        await wait_for(pilot, lambda: errors(chat), what="missing file error")
        assert errors(chat) == [f"no such file or folder: {notes}/missing.md"]
        await say(pilot, "/attach -")
        assert "stdin" in errors(chat)[-1]
        # A file: one chip, as lmassist.attachments.chip draws it.
        office = str(notes / "office.md")
        await say(pilot, f"/attach {office}")
        assert await attached_chips(pilot, chat, 1) == [chip(collect([office])[0])]
        assert chip(collect([office])[0]).endswith("office.md · 85 B · ~22 tokens")
        # A folder: the text files, the binary one skipped and counted; the file attached already once.
        await say(pilot, f"/attach {notes}")
        labels = await attached_chips(pilot, chat, 2)
        assert len(labels) == 2 and "garden.md" in labels[1]
        notes_shown = [str(n.render()) for n in chat.query(".attachment-note")]
        assert "skipped 1 file: 1 binary" in notes_shown and any("attached already" in n for n in notes_shown)
        # The model is shown the files with the next message and every later one.
        await say(pilot, "What is the wifi password?")
        cid = chat.session.conversation.id
        user = chat.session.last("user")
        saved = app.store.attachments(cid)
        assert {a.name.rsplit("/", 1)[-1] for a in saved} == {"office.md", "garden.md"}
        assert {a.message_id for a in saved} == {user.mid}
        first = app.store.messages(cid)[-1]
        assert first.role == "assistant" and first.stats["prompt_tokens"] > 60  # the files were in the prompt
        await say(pilot, "And the network name?")
        later = chat.session.plan_reply(app.host.loaded[chat.model_name], chat.session.last("user"))
        assert "tangerine-42" in later.messages[-1].content and later.messages[-1].content.endswith("network name?")
        # A resumed chat shows the chips again, before the message that sent them.
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        await chat.resume(cid)
        await pilot.pause(0.2)
        assert len(await attached_chips(pilot, chat, 2)) == 2
        shown = list(chat.conversation.children)
        at = [type(w).__name__ for w in shown].index("AttachmentChips")
        assert shown[at + 1].turn.content == "What is the wifi password?"


async def test_files_attached_but_not_sent_are_named_when_the_chat_is_left(make_app: Any, tmp_path: Path) -> None:
    """They belong to the chat left, so a new chat (or a resumed one) does not carry them, and says so."""
    office = tmp_path / "office.md"
    office.write_text(WIFI_NOTE)
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        chat = await ready(pilot)
        await say(pilot, f"/attach {office}")
        await attached_chips(pilot, chat, 1)
        assert [a.name for a in chat.session.log.pending] == [str(office)]
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: toasts(app, "not carried over"), what="the toast naming the dropped file")
        assert toasts(app, f"not carried over: {office}. Use /attach here") == 1
        assert chat.session.log.pending == []
        await pilot.press("ctrl+n")  # nothing was attached this time: nothing to say
        await pilot.pause(0.2)
        assert toasts(app, "not carried over") == 1


async def test_file_picker_attaches_or_fills_in_a_task(make_app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from lmassist.tui.screens.file_picker import FilePicker
    from lmassist.tui.widgets.attachments import AttachmentChip

    (tmp_path / "office.md").write_text(WIFI_NOTE)
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), what="file picker")
        app.screen.query_one("#file-path").value = "office.md"
        app.screen.query_one("#file-path").focus()
        await pilot.press("enter")
        await attached_chips(pilot, chat, 1)
        assert chat.chat_input.text == ""  # attached, not pasted
        assert chat.session.log.pending[0].name == "office.md"
        # While a task is being typed the picked path completes it instead.
        type_in(chat, "/upper ")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), what="file picker")
        app.screen.query_one("#file-path").value = "office.md"
        app.screen.query_one("#file-path").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is chat, what="picker closed")
        assert chat.chat_input.text == "/upper office.md" and len(chat.query(AttachmentChip)) == 1
        # A task's line does not take the pending file: it goes with the next chat message.
        await say(pilot, "/upper office.md")
        assert [a.name for a in chat.session.log.pending] == ["office.md"]
        # An edited message keeps the files the message it replaces brought.
        await say(pilot, "What is the password?")
        first = chat.session.last("user")
        await pilot.press("ctrl+g")
        await say(pilot, "What is the wifi password?")
        edited = chat.session.last("user")
        assert edited.mid != first.mid and edited.content == "What is the wifi password?"
        linked = [a for a in app.store.attachments(chat.session.conversation.id) if a.message_id == edited.mid]
        assert [a.name for a in linked] == ["office.md"]
        plan = chat.session.plan_reply(app.host.loaded[chat.model_name], edited)
        assert "tangerine-42" in plan.messages[-1].content


async def test_attachments_that_do_not_fit_say_so_in_one_line(make_app: Any, tmp_path: Path) -> None:
    topics = ["budget", "roof", "library", "garden", "parking", "schools", "buses", "lights"]
    long_notes = tmp_path / "minutes.md"
    long_notes.write_text("\n\n".join(
        f"## Item {i}\n\nThe council discussed the {topics[i % 8]} for the {i}th time; "
        f"member {i} asked for a report on the {topics[(i * 3) % 8]} by week {i % 52}." for i in range(400)))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # Most of the context left for the reply: the file cannot be shown whole.
        chat = await ready(pilot, {"max_new_tokens": 3800, "temperature": 0, "seed": 1})
        await say(pilot, f"/attach {long_notes}")
        await attached_chips(pilot, chat, 1)
        await say(pilot, "What was said about the parking?", wait=False)
        await wait_for(pilot, lambda: any("passages that best match" in str(n.render())
                                          for n in chat.query(".attachment-note")), what="the fit note")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.busy, what="reply stopped")
        note = next(str(n.render()) for n in chat.query(".attachment-note") if "passages" in str(n.render()))
        assert note.startswith("Attachments: ~") and "\n" not in note


async def test_the_palette_starts_docs_and_template(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        chat = await ready(pilot)
        titles = [c.title for c in app.get_system_commands(chat)]
        assert {"Attach a file…", "Answer from a folder index…", "Apply a template…"} <= set(titles)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen is not chat, what="palette")
        await pilot.press(*"Apply a template")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is chat, what="palette closed")
        assert chat.chat_input.text == "/template "
        await say(pilot, "/help")
        help_text = [s for s in infos(chat) if "Slash commands" in s][-1]
        for usage in ("/attach [PATH...]", r"/docs NAME\|off", "/template NAME"):
            assert usage in help_text, usage
