"""Attachments as the library sees them: real files in tmp folders, real SQLite, the real default
model counting tokens (``smollm``). The CLI's side is in test_attachments_cli.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lmassist.attachments import Attachment, chip, collect, fit_attachments, split_passages
from lmassist.conversation import ConversationLog, replay
from lmassist.errors import ContextLengthError, LMAssistError
from lmassist.generation import GenerationOptions
from lmassist.store import Store

BUDGET_NOTE = "# Budget meeting\n\nCouncillor David Okafor will bring the budget.\nHelen Park chairs.\n"


def make_files(root: Path) -> Path:
    """A folder of what users attach: notes (with a binary, a Latin-1, an empty and a hidden file
    among them), a file with a code word, a binary file and an empty folder. Shared with the CLI tests."""
    notes = root / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "budget.md").write_text(BUDGET_NOTE)
    (notes / "sub" / "todo.txt").write_text("buy milk\n")
    (notes / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (notes / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (notes / "empty.txt").write_text("  \n")
    (notes / ".hidden.md").write_text("secret")
    (root / "code.txt").write_text("The secret code word is PINEAPPLE-42.\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (root / "empty").mkdir()
    return root


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return make_files(tmp_path / "files") / "notes"


def test_collect_a_folder_reads_text_recursively_and_counts_what_it_skips(notes: Path) -> None:
    found = collect([str(notes)])
    assert [Path(a.name).relative_to(notes).as_posix() for a in found] == ["budget.md", "sub/todo.txt"]
    assert dict(found.skipped) == {"binary": 1, "not UTF-8": 1, "empty": 1, "hidden file": 1}
    assert found.skipped_line() == "skipped 4 files: 1 binary, 1 empty, 1 hidden file, 1 not UTF-8"
    budget = found[0]
    assert budget.text == BUDGET_NOTE
    assert budget.sha256 == hashlib.sha256(BUDGET_NOTE.encode()).hexdigest()
    assert budget.size == len(BUDGET_NOTE.encode()) and budget.tokens == (len(BUDGET_NOTE) + 3) // 4


def test_collect_globs_files_and_the_same_file_twice(notes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(notes)
    found = collect(["*.md", "budget.md", "sub/*.txt", "./budget.md"])
    assert [a.name for a in found] == ["budget.md", "sub/todo.txt"]  # one file, read once
    assert collect(["latin.txt"], encoding="latin-1")[0].text == "café crème"


@pytest.mark.parametrize(("arg", "needle"), [
    ("missing.md", "no such file or folder: missing.md"),
    ("logo.png", "logo.png looks like a binary file"),
    ("latin.txt", "latin.txt is not UTF-8"),
    ("empty.txt", "empty.txt is empty"),
    ("*.docx", "no files match *.docx"),
    ("*.png", "nothing readable matches *.png (skipped 1 file: 1 binary)"),
    ("void", "folder void has no readable text files"),
])
def test_collect_bad_input_is_one_line(notes: Path, monkeypatch: pytest.MonkeyPatch, arg: str, needle: str) -> None:
    monkeypatch.chdir(notes)
    (notes / "void").mkdir()
    with pytest.raises(LMAssistError) as err:
        collect([arg])
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "dump.log"
    with big.open("wb") as f:
        f.truncate(6 * 1024 * 1024)
    with pytest.raises(LMAssistError, match=r"dump.log is 6.3 MB; an attachment can be at most 5.2 MB"):
        collect([str(big)])


def test_chip() -> None:
    a = Attachment.from_text("notes.md", "x" * 4300)
    assert chip(a) == "notes.md · 4.3 kB · ~1,075 tokens"
    assert chip(Attachment.from_text("a.txt", "hi")) == "a.txt · 2 B · ~1 tokens"


def _long_note(needle: str) -> str:
    filler = "\n\n".join(f"## Item {i}\n\nThe committee discussed routine matter number {i} and moved on." for i in range(300))
    return f"# Minutes\n\n{filler}\n\n## Budget\n\n{needle}\n"


def test_fit_shows_whole_files_when_they_fit_and_passages_when_not(smollm) -> None:
    small = Attachment.from_text("budget.md", BUDGET_NOTE)
    whole = fit_attachments([small], "Who brings the budget?", 500, smollm.count_tokens)
    assert not whole.retrieved and "----- budget.md -----\n# Budget meeting" in whole.text
    assert "----- end of budget.md -----" in whole.text
    big = Attachment.from_text("minutes.md", _long_note("Councillor David Okafor will bring the budget."))
    fit = fit_attachments([big, small], "Who will bring the budget?", 300, smollm.count_tokens)
    assert fit.retrieved and fit.tokens > 3000 and fit.used is not None and fit.used < fit.total
    assert smollm.count_tokens(fit.text) <= 300
    assert "(lines " in fit.text and "David Okafor will bring the budget" in fit.text
    assert fit.summary.startswith(f"Attachments: ~{fit.tokens:,} tokens; the context leaves 300 for them")
    assert len(split_passages([big])) == fit.total - len(split_passages([small]))
    with pytest.raises(ContextLengthError, match="leaves no room"):
        fit_attachments([big], "q", 10, smollm.count_tokens)


def test_the_model_sees_the_files_on_every_later_turn(tmp_path: Path, smollm) -> None:
    opts = GenerationOptions(max_new_tokens=32)
    a = Attachment.from_text("budget.md", BUDGET_NOTE)
    with Store(tmp_path / "h.db") as store:
        log = ConversationLog(store)
        assert log.attach([a, a]) == [a] and log.attach([a]) == []
        first = log.start_exchange("Who brings the budget?", model="m", options=opts, llm=smollm)
        log.finish_exchange(first, "David Okafor.", "complete", None)
        assert log.pending == []
        second = log.start_exchange("Who chairs?", model="m", options=opts, llm=smollm)
        log.finish_exchange(second, "Helen Park.", "complete", None)
        for exchange, question in ((first, "Who brings the budget?"), (second, "Who chairs?")):
            last = exchange.messages[-1]
            assert last.role == "user" and last.content.endswith(f"----- end of budget.md -----\n\n{question}")
            assert "Councillor David Okafor" in last.content
        assert [m.content for m in second.messages[:-1]] == ["Who brings the budget?", "David Okafor."]
        assert [x.name for x in store.attachments(log.id)] == ["budget.md"]  # linked once, to the first question
        assert store.messages(log.id)[0].content == "Who brings the budget?"  # history keeps the question as typed
        # A new version of the file under the same name: the model sees that one only.
        log.attach([Attachment.from_text("budget.md", BUDGET_NOTE.replace("Helen Park", "Ines Duarte"))])
        third = log.start_exchange("Who chairs now?", model="m", options=opts, llm=smollm)
        assert "Ines Duarte" in third.messages[-1].content and "Helen Park" not in third.messages[-1].content


def test_an_edited_question_takes_its_files_out_of_view(tmp_path: Path, smollm) -> None:
    opts = GenerationOptions(max_new_tokens=32)
    with Store(tmp_path / "h.db") as store:
        log = ConversationLog(store)
        log.attach([Attachment.from_text("budget.md", BUDGET_NOTE)])
        ex = log.start_exchange("Who brings the budget?", model="m", options=opts, llm=smollm)
        log.finish_exchange(ex, "David.", "complete", None)
        # the app's edit: a new row that replaces the first question (and its reply)
        store.add_message(log.id, "user", "Hello", options={"replaces": ex.user_mid})
        assert [m.content for m in replay(store.messages(log.id))] == ["Hello"]
        assert log.attached() == []


def test_without_history_the_files_stay_for_the_session(smollm) -> None:
    opts = GenerationOptions(max_new_tokens=16)
    log = ConversationLog(None)
    log.attach([Attachment.from_text("budget.md", BUDGET_NOTE)])
    log.start_exchange("q1", model="m", options=opts, llm=smollm)
    again = log.start_exchange("q2", model="m", options=opts, llm=smollm)
    assert "Councillor David Okafor" in again.messages[-1].content


def test_files_that_cannot_fit_save_nothing(tmp_path: Path, smollm) -> None:
    with Store(tmp_path / "h.db") as store:
        log = ConversationLog(store)
        log.attach([Attachment.from_text("minutes.md", _long_note("x"))])
        question = "word " * (smollm.context_length - 40)
        with pytest.raises(ContextLengthError):
            log.start_exchange(question, model="m", options=GenerationOptions(max_new_tokens=8), llm=smollm)
        assert store.conversations() == [] and log.pending


def test_many_attachments_show_a_few_chips_and_one_total(capsys) -> None:
    """A folder of many files prints five chips and one line for the rest, not a screenful."""
    from lmassist.commands.turn_setup import CHIPS_SHOWN, show_attached

    many = [Attachment.from_text(f"n{i}.md", "x" * 1000) for i in range(CHIPS_SHOWN + 7)]
    show_attached(many)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:CHIPS_SHOWN] == [f"Attached {chip(a)}" for a in many[:CHIPS_SHOWN]]
    assert lines[CHIPS_SHOWN:] == ["Attached 7 more files · 7.0 kB · ~1,750 tokens"]
    show_attached(many[: CHIPS_SHOWN + 1])  # one more than shown: its chip, not "1 more files"
    assert len(capsys.readouterr().err.splitlines()) == CHIPS_SHOWN + 1
