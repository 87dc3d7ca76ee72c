"""Chunking and the task contract's pure logic: no model needed, so these run in milliseconds."""

from __future__ import annotations

import pytest

from lmassist.generation import LMAssistError
from lmassist.tasks import prompts
from lmassist.tasks.chunking import (
    chunk_text,
    document_blocks,
    paragraphs,
    prose_pieces,
    split_sentences,
)
from lmassist.tasks.qa_context import Passage, candidate_spans, question_type, retrieve
from lmassist.tasks.translate import resolve_language

DOC = """# Title

Intro paragraph with a [link](https://example.com) and `code`.
It goes on a second line.

- first item
  continued
- second item

```python
def f():

    return 1  # a blank line above, inside the fence
```

> a quote

---
Last paragraph.
"""


def words_count(text: str) -> int:
    return len(text.split())


def test_blocks_round_trip_and_kinds() -> None:
    blocks = list(document_blocks(DOC))
    assert "".join(b.text for b in blocks) == DOC
    kinds = [b.kind for b in blocks if b.kind != "blank"]
    assert kinds == ["heading", "paragraph", "list_item", "list_item", "code", "quote", "rule", "paragraph"]
    code = next(b for b in blocks if b.kind == "code")
    assert code.text.startswith("```python") and code.text.rstrip().endswith("```")


def test_unclosed_fence_runs_to_the_end() -> None:
    blocks = list(document_blocks("text\n\n```\ncode\n\nmore code\n"))
    assert blocks[-1].kind == "code" and "more code" in blocks[-1].text


def test_summary_material_leaves_out_code_and_front_matter() -> None:
    pieces = list(prose_pieces("---\nkey: v\n---\n\nTitle\n=====\n\nSome prose here.\n\n    code()\n"))
    assert pieces == ["# Title\n", "Some prose here.\n"]
    assert list(prose_pieces("```\nonly code\n```\n")) == ["```\nonly code\n```\n"]  # nothing else: kept
    assert list(prose_pieces("x = 1\n\n\ndef f():\n    pass\n", "code")) == ["x = 1\n", "def f():\n    pass\n"]


def test_chunks_fit_and_nothing_is_lost() -> None:
    paras = [" ".join(f"w{i}_{j}" for j in range(30)) for i in range(20)]
    paras.append(" ".join(f"long{j}." if j % 7 == 6 else f"long{j}" for j in range(200)))  # longer than a chunk
    chunks = list(chunk_text(paras, words_count, 50))
    assert all(words_count(c) <= 50 for c in chunks)
    seen = " ".join(chunks).split()
    assert seen == " ".join(paras).split()


def test_giant_word_is_cut() -> None:
    chunks = list(chunk_text(["x" * 1000], lambda t: len(t) // 4 + 1, 20))
    assert "".join(chunks) == "x" * 1000
    assert all(len(c) // 4 + 1 <= 20 for c in chunks)


def test_paragraphs_stream_from_lines() -> None:
    assert list(paragraphs(iter(["a\n", "b\n", "\n", "c\n"]))) == ["a\nb\n", "c\n"]


def test_sentences() -> None:
    assert split_sentences("It rained. Then it stopped! Why? 3 more.") == ["It rained.", "Then it stopped!", "Why?", "3 more."]


def test_languages_by_code_and_name() -> None:
    assert resolve_language("fr") == "fr"
    assert resolve_language("French") == "fr"
    assert resolve_language("pt-BR") == "pt"
    with pytest.raises(LMAssistError, match="unknown language 'klingon'; choose one of: .*fr \\(French\\)"):
        resolve_language("klingon")


def test_prompt_templates_overridable(tmp_path) -> None:
    from lmassist.config import Settings

    settings = Settings(tmp_path / "s.json")
    assert prompts.template("summarize", "completion", "prompt", settings).endswith("TL;DR:")
    settings.set("tasks.summarize.completion.prompt", "{text}\nIn short:")
    assert prompts.template("summarize", "completion", "prompt", settings) == "{text}\nIn short:"
    assert prompts.render("{text} {json: 1}", text="x") == "x {json: 1}"


def test_question_types_and_spans() -> None:
    assert question_type("When were the Normans in Normandy?") == "date"
    assert question_type("How many men worked there?") == "number"
    assert question_type("Who was the Norse leader?") == "person"
    spans = candidate_spans("Their leader Rollo swore fealty to King Charles III in 911.", "Who was the Norse leader?")
    assert "Rollo" in spans and all(s[0].isupper() for s in spans)
    dates = candidate_spans("Their leader Rollo swore fealty to King Charles III in 911.", "When did Rollo swear fealty?")
    assert dates and all(any(ch.isdigit() for ch in s) or "III" in s for s in dates)


def test_bm25_retrieval_ranks_the_relevant_passage_first() -> None:
    passages = [Passage("a", "The cat sat on the mat all day."), Passage("b", "Alice will bring the budget."),
                Passage("c", "Rain is expected tomorrow in the north.")]
    assert retrieve("Who brings the budget?", passages, 1)[0].source == "b"


def test_blocks_are_a_stream() -> None:
    """A block comes out before the input is read to its end (a 100 MB file is never held as tokens)."""
    from lmassist.docindex import blocks as md

    def lines():
        for i in range(md.SEGMENT_LINES * 3):
            yield f"para {i}\n"
            yield "\n"
        raise RuntimeError("read too far")

    it = md.iter_markdown_blocks(lines())
    assert next(it).text == "para 0\n"


def test_missing_words_hint_unanswerable() -> None:
    from lmassist.tasks.qa_context import missing_words

    ctx = "The Normans gave their name to Normandy, a region in France, in the 10th century."
    assert missing_words("In what country is Normandy located?", ctx) == ["country", "located"]
    assert missing_words("Who gave their name to Normandy?", ctx) == []


# -- long inputs without line breaks: linear, through the real default model's tokenizer ---------------


class Counting:
    """The model's count_tokens, counting how often and over how many characters it is called."""

    def __init__(self, model) -> None:
        self.model, self.calls, self.chars = model, 0, 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        self.chars += len(text)
        return self.model.count_tokens(text)


def _one_line(n_chars: int, spaces: bool = True) -> str:
    words = "the council approved the budget and roads will be repaired before the parks".split()
    if not spaces:
        return ("abcdefghij" * (n_chars // 10 + 1))[:n_chars]
    return " ".join(words[i % len(words)] for i in range(n_chars // 4))[:n_chars]


def test_one_megabyte_line_chunks_linearly(smollm) -> None:
    """The old word splitter re-tokenized the growing chunk for every word (>15 min on 1 MB)."""
    text = _one_line(1_000_000)
    count = Counting(smollm)
    chunks = list(chunk_text(paragraphs([text]), count, 1536))
    assert all(smollm.count_tokens(c) <= 1536 for c in chunks)
    assert " ".join(chunks).split() == text.split()  # nothing dropped
    assert count.calls <= len(chunks) + 8  # about one tokenization per chunk
    assert count.chars <= 1.3 * len(text)  # each character tokenized about once
    assert min(smollm.count_tokens(c) for c in chunks[:-1]) >= 1536 * 0.6  # chunks are full, not crumbs


def test_line_with_no_spaces_is_cut_by_tokens(smollm) -> None:
    from lmassist.tasks.chunking import split_by_tokens

    text = _one_line(200_000, spaces=False)
    count = Counting(smollm)
    pieces = list(split_by_tokens(text, count, 500))
    assert "".join(p for p, _ in pieces) == text
    assert all(n <= 500 and smollm.count_tokens(p) == n for p, n in pieces)
    assert count.calls <= len(pieces) + 8 and count.chars <= 1.3 * len(text)


def test_fit_head_tokenizes_only_the_head(smollm) -> None:
    """sentiment on a 10 MB file re-tokenized the whole text while shrinking it (4 min, 658 MB)."""
    from lmassist.tasks.chunking import fit_head

    text = _one_line(10_000_000)
    count = Counting(smollm)
    head, cut = fit_head(text, count, 3000)
    assert cut and text.startswith(head) and 2000 <= smollm.count_tokens(head) <= 3000
    assert count.chars < 100_000
    short = "A fine film."
    assert fit_head(short, smollm.count_tokens, 3000) == (short, False)


def test_translate_pieces_of_a_long_line_fit(smollm) -> None:
    """translate promised chunking but sent a 1 MB line as one 194k-token prompt."""
    from lmassist.tasks.translate import Translator

    tr = Translator(smollm, "fr")
    text = _one_line(300_000)
    pieces = tr.pieces(text)
    assert len(pieces) > 1
    assert all(smollm.count_tokens(p) <= tr.piece_budget() for p in pieces)
    assert " ".join(pieces).split() == text.split()
    assert tr.pieces("Good morning.") == ["Good morning."]


def test_summary_of_a_line_without_full_stops_ends(smollm) -> None:
    """Each extract of a text with no full stop was the whole chunk, so the reduce step never shrank."""
    from lmassist.tasks.summarize import MAX_SENTENCE_WORDS, Summarizer

    out = Summarizer(smollm).summarize(_one_line(300_000))
    assert len(out["chunks"]) > 1
    assert 0 < len(out["summary"].split()) <= 6 * (MAX_SENTENCE_WORDS + 1)


def test_chunking_stops_when_cancelled() -> None:
    from lmassist.generation import CancelToken

    cancel = CancelToken()
    seen = []
    for chunk in chunk_text([_one_line(200_000)], words_count, 100, cancel=cancel):
        seen.append(chunk)
        cancel.cancel()
    assert len(seen) == 1
