"""Extractive summaries of Markdown: titles and list markers are structure, never summary sentences."""

from __future__ import annotations

from lmassist.tasks.summarize import clean_sentences

NOTES = """# Team sync, 3 March

Alice will bring the budget to Thursday's review. The release moves to April.

## Actions

- Bob owns the installer fix and will report on Monday.
1. Everyone agreed to cut the beta survey to five questions.
> Carol will book the room for the next review.
"""


def test_headings_are_not_sentences_and_list_markers_are_dropped():
    sentences = clean_sentences(NOTES)
    assert sentences[0] == "Alice will bring the budget to Thursday's review."
    assert not any("#" in s or "Team sync" in s or "Actions" in s for s in sentences)
    assert "Bob owns the installer fix and will report on Monday." in sentences
    assert "Everyone agreed to cut the beta survey to five questions." in sentences
    assert "Carol will book the room for the next review." in sentences
