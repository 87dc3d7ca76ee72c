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


README = """Garden planner
==============

The planner tells you what to sow each week. It reads your beds from a small file and prints a
calendar for the season.

```js
// This comment is a sentence that looks like prose to a regex splitter.
const plan = load("beds.toml");  // Another sentence inside the code, not summary material.
```

    $ planner --weeks 12   # Indented code: also not summary material at all.

- Beds are listed with their size and soil. Each bed gets its own row in the calendar.
"""


def test_summaries_leave_out_code_and_setext_underlines(smollm):
    from lmassist.tasks.summarize import Summarizer

    out = Summarizer(smollm, "long").summarize(README)
    assert "planner tells you what to sow" in out["summary"]
    assert not any(s in out["summary"] for s in ("comment", "load(", "$ planner", "====", "Indented code"))
