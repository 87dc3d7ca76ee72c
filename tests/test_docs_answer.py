"""Answers and chat turns over an indexed folder (``lmassist.tasks.docs_answer``): a real index in a
temporary folder, the real default model."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmassist.docindex.index import DocIndex
from lmassist.errors import LMAssistError
from lmassist.generation import Message
from lmassist.tasks.docs_answer import NO_ANSWER, Citation, answer_from_docs, docs_turn

MINUTES = """\
# Budget committee

Present: Helen Park (chair), Councillor David Okafor, Sam Whitfield.

## Next meeting

The next meeting is on 18 March in the Old Town Hall.
Councillor David Okafor will bring the budget. Priya will book the projector.
"""

GARDEN = "# Garden\n\nMarigolds between the tomatoes keep the whitefly away.\n"


@pytest.fixture
def index(tmp_path: Path) -> DocIndex:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "minutes.md").write_text(MINUTES, encoding="utf-8")
    (folder / "garden.md").write_text(GARDEN, encoding="utf-8")
    with DocIndex(tmp_path / "docs.db") as opened:
        opened.add("notes", folder)
        yield opened


def test_citation_reads_as_path_and_line() -> None:
    c = Citation("meetings/minutes.md", 8, 8, "Councillor David Okafor will bring the budget.")
    assert str(c) == "meetings/minutes.md:8" and f"see {c}" == "see meetings/minutes.md:8"


def test_answer_cites_the_line_the_answer_is_on(index: DocIndex, smollm) -> None:
    out = answer_from_docs(smollm, "notes", "Who brings the budget?", index=index)
    assert not out.abstained and "Okafor" in out.text
    assert str(out.citations[0]) == "minutes.md:8" and "will bring the budget" in out.citations[0].text
    assert {c.path for c in out.passages} >= {"minutes.md"}


def test_answer_abstains_when_nothing_matches_or_a_name_is_missing(index: DocIndex, smollm) -> None:
    nothing = answer_from_docs(smollm, "notes", "What colour is the zeppelin?", index=index)
    assert nothing.abstained and nothing.text == NO_ANSWER and nothing.citations == [] and nothing.passages == []
    missing = answer_from_docs(smollm, "notes", "Who brings the budget to the Brighton meeting?", index=index)
    assert missing.abstained and missing.text == NO_ANSWER and missing.passages  # retrieved, not supported


def test_turn_holds_the_passages_and_history_and_cites_them(index: DocIndex, smollm) -> None:
    history = [Message("user", "Hi"), Message("assistant", "Hello!")]
    turn = docs_turn(smollm, "notes", "Who brings the budget?", history, index=index)
    assert turn.abstain is None
    assert turn.messages[0].role == "system" and "Councillor David Okafor will bring the budget" in turn.messages[0].content
    assert "[1] minutes.md:5\n## Next meeting" in turn.messages[0].content  # the best passage first
    assert turn.messages[1:3] == history and turn.messages[-1] == Message("user", "Who brings the budget?")
    assert [str(c) for c in turn.citations] == ["minutes.md:5", "minutes.md:1"]
    reply = smollm.chat(turn.messages).result()  # what ask --docs streams
    assert reply.strip()


def test_turn_abstains_without_generating_when_retrieval_finds_nothing(index: DocIndex, smollm) -> None:
    turn = docs_turn(smollm, "notes", "What colour is the zeppelin?", index=index)
    assert turn.abstain == NO_ANSWER and turn.messages == [] and turn.citations == []
    assert docs_turn(smollm, "notes", "When is Brighton's match?", index=index).abstain == NO_ANSWER


def test_unknown_collection_is_a_one_line_error(index: DocIndex, smollm) -> None:
    with pytest.raises(LMAssistError, match="no document collection named 'nope'"):
        answer_from_docs(smollm, "nope", "Who?", index=index)
