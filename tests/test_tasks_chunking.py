"""Chunking and the task contract's pure logic: no model needed, so these run in milliseconds."""

from __future__ import annotations

import pytest

from lmassist.generation import LMAssistError
from lmassist.tasks import prompts
from lmassist.tasks.chunking import chunk_text, iter_blocks, paragraphs, split_blocks, split_sentences
from lmassist.tasks.qa import Passage, candidate_spans, question_type, retrieve
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
    blocks = split_blocks(DOC)
    assert "".join(b.text for b in blocks) == DOC
    kinds = [b.kind for b in blocks if b.kind != "blank"]
    assert kinds == ["heading", "text", "list", "list", "code", "quote", "rule", "text"]
    code = next(b for b in blocks if b.kind == "code")
    assert code.text.startswith("```python") and code.text.rstrip().endswith("```")


def test_unclosed_fence_runs_to_the_end() -> None:
    blocks = split_blocks("text\n\n```\ncode\n\nmore code\n")
    assert blocks[-1].kind == "code" and "more code" in blocks[-1].text


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


def test_iter_blocks_is_lazy() -> None:
    def lines():
        yield "para one\n"
        yield "\n"
        raise RuntimeError("read too far")

    it = iter_blocks(lines())
    assert next(it).text == "para one\n"


def test_missing_words_hint_unanswerable() -> None:
    from lmassist.tasks.qa import missing_words

    ctx = "The Normans gave their name to Normandy, a region in France, in the 10th century."
    assert missing_words("In what country is Normandy located?", ctx) == ["country", "located"]
    assert missing_words("Who gave their name to Normandy?", ctx) == []
