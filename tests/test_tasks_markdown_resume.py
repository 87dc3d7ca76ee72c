"""Resumable chunked work: translate and summarize keep each finished chunk in a job's memo, and a
re-run after Ctrl+C redoes only the rest; summarize's overview of many files' summaries.

The memo is the real one (``lmassist.jobs.memo.Memo``, a file in tmp_path, opened again as a new
run would); summaries come from the real default model, counted through a thin wrapper.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from test_tasks_markdown import DOC, Upper

from lmassist.generation import CancelToken, Model, ModelInfo, StreamRequest
from lmassist.jobs.memo import Memo
from lmassist.tasks.summarize import Summarizer, overview
from lmassist.tasks.translate import Translator


class Counted(Model):
    """The real model, counting the generations asked of it."""

    def __init__(self, inner: Model) -> None:
        self.inner, self.calls = inner, 0
        self.info = ModelInfo(name=inner.info.name, backend=inner.info.backend,
                              context_length=inner.context_length, chat_template=inner.info.chat_template)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        self.calls += 1
        return self.inner.stream_pieces(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        return self.inner.score(prompt, continuations)


def cancel_after(n: int) -> tuple[CancelToken, object]:
    """A cancel token set (as Ctrl+C sets it) once ``n`` steps have reported progress."""
    token = CancelToken()

    def progress(done: int, total: int | None) -> None:
        if done >= n:
            token.cancel()

    return token, progress


def test_translate_resumes_with_only_the_unfinished_blocks(tmp_path) -> None:
    full = Translator(Upper(), "fr").translate_document(DOC)
    memo_file = tmp_path / "memo.jsonl"
    first = Upper()
    cancel, progress = cancel_after(3)
    with Memo(memo_file) as memo:
        stopped = Translator(first, "fr").translate_document(DOC, progress, cancel, memo=memo)
    # stopped after the third block: heading, paragraph and first list item done, the rest as it was
    assert "BUY SEEDS" in stopped and "- Fix the fence" in stopped and stopped.endswith(DOC[DOC.index("- Fix"):])
    assert len(Memo(memo_file)) == 3  # the three finished blocks, nothing cut short

    again = Upper()
    with Memo(memo_file) as memo:
        resumed = Translator(again, "fr").translate_document(DOC, memo=memo)
    assert resumed == full
    assert not set(first.requests) & set(again.requests)  # nothing translated twice
    assert len(first.requests) + len(again.requests) == len(Upper_requests_for(DOC))


def Upper_requests_for(text: str) -> list[str]:  # noqa: N802 - reads as what it returns
    model = Upper()
    Translator(model, "fr").translate_document(text)
    return model.requests


def test_memo_key_changes_with_the_target_language(tmp_path) -> None:
    with Memo(tmp_path / "m.jsonl") as memo:
        Translator(Upper(), "fr").translate_document("Hello there.\n", memo=memo)
        german = Upper()
        Translator(german, "de").translate_document("Hello there.\n", memo=memo)
    assert german.requests == ["Hello there."]


PARAS = "\n\n".join(f"Paragraph {i} is about the {topic}. The {topic} matters to the town council."
                    for i, topic in enumerate(["river", "bridge", "school", "market", "library", "park"]))


def summarizer(model: Model, **kw) -> Summarizer:
    s = Summarizer(model, "short", chunk_tokens=40, mode="abstractive", **kw)
    s.max_new = 12
    return s


def test_summarize_resumes_after_a_cancel(smollm, tmp_path) -> None:
    fresh = Counted(smollm)
    with Memo(tmp_path / "full.jsonl") as memo:
        whole = summarizer(fresh).summarize(PARAS, memo=memo)
    assert len(whole["chunks"]) >= 3 and fresh.calls > len(whole["chunks"])  # map, then reduce

    memo_file = tmp_path / "memo.jsonl"
    cancel, progress = cancel_after(2)
    first = Counted(smollm)
    with Memo(memo_file) as memo:
        stopped = summarizer(first).summarize(PARAS, progress, cancel, memo=memo)
    assert stopped["summary"] == "" and first.calls == 2 and len(Memo(memo_file)) == 2

    again = Counted(smollm)
    with Memo(memo_file) as memo:
        resumed = summarizer(again).summarize(PARAS, memo=memo)
    assert again.calls == fresh.calls - 2  # only what the stopped run had not finished
    assert [c["summary"] for c in resumed["chunks"][:2]] == [c["summary"] for c in stopped["chunks"]]
    assert resumed["summary"]


FILES = [
    ("notes/budget.md", "The council approved the budget for road repairs. Spending rises by four percent."),
    ("notes/parks.md", "Two new parks open in the north of the town in May. Volunteers will plant trees."),
    ("notes/library.md", "The library extends its opening hours to eight in the evening on weekdays."),
]


def test_overview_of_file_summaries_with_the_default_model(smollm) -> None:
    model = Counted(smollm)
    text = overview(model, iter(FILES), {"length": "short", "mode": "abstractive"})
    assert text.strip() and model.calls == 1  # they fit one prompt
    words = set(text.lower().split())
    assert words & {"budget", "parks", "park", "library", "council", "town", "road", "roads"}


def test_overview_map_reduces_when_the_summaries_do_not_fit(smollm, tmp_path) -> None:
    model = Counted(smollm)
    many = [(f"notes/{i}.md", text) for i in range(4) for _, text in FILES]
    with Memo(tmp_path / "o.jsonl") as memo:
        text = overview(model, many, {"length": "short", "mode": "abstractive", "chunk_tokens": 48, "memo": memo})
    assert text.strip() and model.calls > 2  # groups first, then their combination
    assert len(text.split()) < sum(len(s.split()) for _, s in many)
    again = Counted(smollm)
    with Memo(tmp_path / "o.jsonl") as memo:
        assert overview(again, many, {"length": "short", "mode": "abstractive", "chunk_tokens": 48,
                                      "memo": memo}) == text
    assert again.calls == 0  # every step came from the memo


def test_extractive_overview_copies_sentences_and_cancel_gives_nothing(smollm) -> None:
    text = overview(smollm, FILES, {"length": "short"})
    sentences = [s for _, body in FILES for s in body.split(". ")]
    assert text and all(any(part.rstrip(".") in s for s in sentences) for part in text.split(". "))
    cancel = CancelToken()
    cancel.cancel()
    assert overview(smollm, FILES, {"mode": "abstractive"}, cancel=cancel) == ""


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completion"])
def test_translate_progress_counts_blocks(chat) -> None:
    seen: list[tuple[int, int | None]] = []
    Translator(Upper(chat), "fr").translate_document(DOC, progress=lambda d, n: seen.append((d, n)))
    assert seen[-1] == (len(seen), len(seen)) and len(seen) == 7  # headings, paragraph, items, quote, table
