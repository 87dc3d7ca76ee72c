"""Task logic on the real default model (SmolLM2-135M through llama.cpp), both prompt forms.

Inputs are tiny and generation budgets small: the machine is shared and the model runs on 2 cores.
A wrapper model that hides the chat template (a completion-only model) and one that hides ``score``
exercise the other code paths on the same real weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from lmassist.generation import LMAssistError, Model, ModelInfo, StreamRequest
from lmassist.tasks.qa import NO_ANSWER, QuestionAnswerer
from lmassist.tasks.sentiment import SentimentTask
from lmassist.tasks.sentiment_classifier import SentimentClassifier
from lmassist.tasks.summarize import Summarizer
from lmassist.tasks.translate import Translator


class Wrapped(Model):
    """The real model, seen as a completion-only base model and/or one without ``score``."""

    def __init__(self, inner: Model, chat_template: bool, can_score: bool) -> None:
        self.inner = inner
        self.info = ModelInfo(name=inner.info.name + "+wrapped", backend=inner.info.backend,
                              context_length=inner.context_length, chat_template=chat_template)
        if can_score:
            self.score = inner.score  # type: ignore[method-assign]
        self._can_score = can_score

    @property
    def supports_score(self) -> bool:
        return self._can_score

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        return self.inner.stream_pieces(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:  # hidden unless can_score
        return Model.score(self, prompt, continuations)


@pytest.fixture(scope="module")
def smollm(default_gguf) -> Iterator[Model]:
    """The real default model, but on one thread (overrides the session fixture in this module).

    On a shared, oversubscribed 2-core machine llama.cpp's two threads wait on each other at every
    layer: scoring measured 8x slower than with one thread. One thread keeps these tests short.
    """
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    model = Registry(PluginManager(load_entry_points=False)).load("llamacpp:smollm2-135m-instruct", threads=1)
    yield model
    model.close()


@pytest.fixture(scope="module")
def base_model(smollm) -> Model:
    return Wrapped(smollm, chat_template=False, can_score=True)


@pytest.fixture(scope="module")
def no_score(smollm) -> Model:
    return Wrapped(smollm, chat_template=False, can_score=False)


def test_sentiment_by_score_single_form(smollm) -> None:
    clf = SentimentClassifier(smollm, forms=("review",), shots=4, orders=1)
    out = clf.classify_many(["a wonderful , moving and funny film .", "a boring , ugly mess ."])
    assert [o["label"] for o in out] == ["positive", "negative"]
    assert all(0.5 <= o["confidence"] <= 1 for o in out)


def test_calibration_changes_a_decision(smollm) -> None:
    """The content-free prior is subtracted: on a borderline text it flips the label."""
    plain = SentimentClassifier(smollm, forms=("review",), shots=4, orders=1, suffix="", calibration="none")
    cal = SentimentClassifier(smollm, forms=("review",), shots=4, orders=1, suffix="", calibration="content-free")
    prior = cal.offsets()["review"]
    assert prior[0] != prior[1]
    assert prior[0] < prior[1]  # this prompt leans negative on content-free inputs
    text = "it is a comedy ."  # a neutral statement the raw scores call negative, less than the prior
    assert plain.classify(text)["label"] == "negative"
    assert cal.classify(text)["label"] == "positive"


def test_shot_orders_put_the_other_label_last(smollm) -> None:
    from lmassist.tasks.sentiment_prompts import FORMS

    form = FORMS["review"]
    first, swapped = form.prefix(("positive", "negative"), 4), form.prefix(("positive", "negative"), 4, order=1)
    assert first != swapped and sorted(first.split("\n\n")) == sorted(swapped.split("\n\n"))  # same shots
    assert first.rstrip().endswith("negative") and swapped.rstrip().endswith("positive")
    clf = SentimentClassifier(smollm, forms=("review",), shots=4, orders=2)
    assert len(clf.offsets()) == 2  # one calibration per view: both orders are scored
    assert clf.classify("a wonderful , moving and funny film .")["label"] == "positive"


def test_batch_calibration_balances_a_batch(smollm) -> None:
    """Centring on the batch median splits even a batch the raw scores call all one way."""
    texts = [f"the film runs {n} minutes and was shot in {city} ." for n, city in
             zip(range(90, 170, 10), ["paris", "rome", "oslo", "lima", "cairo", "delhi", "quito", "seoul"], strict=True)]
    plain = SentimentClassifier(smollm, forms=("review",), shots=4, orders=1, calibration="none")
    cal = SentimentClassifier(smollm, forms=("review",), shots=4, orders=1, calibration="batch")
    raw = [o["label"] for o in plain.classify_many(texts)]
    labels = [o["label"] for o in cal.classify_many(texts)]
    assert set(labels) == {"positive", "negative"} and 3 <= labels.count("positive") <= 5
    assert len(set(raw)) == 1 or raw != labels  # it changed decisions where the raw scores leaned one way
    assert cal.classify("a wonderful film .")["label"] == "positive"  # one text: nothing to centre on


def test_sentiment_without_score_generates_and_parses(no_score) -> None:
    clf = SentimentClassifier(no_score, forms=("review",), shots=4)
    assert clf.method == "generate"
    out = clf.classify("a wonderful , moving and funny film .")
    assert out["label"] in ("positive", "negative", "unknown")
    assert out["label"] == "positive"
    with pytest.raises(LMAssistError, match="cannot score"):
        SentimentClassifier(no_score, method="score")


def test_sentiment_slash_command(smollm) -> None:
    task = SentimentTask()
    md = task.run_slash(smollm, '--text "a wonderful , moving film ." --method score')
    assert "positive" in md and md.startswith("| label")
    assert task.slash_usage.startswith("/sentiment TEXT | [FILE|-]")
    typed = task.run_slash(smollm, "it's a wonderful , moving film .")  # words typed in the chat
    assert "**positive**" in typed and "it's a wonderful" in typed
    with pytest.raises(LMAssistError, match="give a file"):
        task.run_slash(smollm, "")
    with pytest.raises(LMAssistError, match="(?i)no such option"):
        task.run_slash(smollm, "--bogus")


def test_qa_extracts_a_span_from_context(smollm) -> None:
    qa = QuestionAnswerer(smollm, margin=3.0)
    note = "Alice will bring the budget to the meeting. Bob will take notes. The meeting is on Monday."
    out = qa.answer("When is the meeting?", [("note", note)])
    assert out["method"] == "spans" and out["answer"] == "Monday"
    assert out["candidates"][0]["text"] == "Monday"


def test_qa_says_when_context_lacks_the_answer(smollm) -> None:
    qa = QuestionAnswerer(smollm, margin=0.0, rule="margin")
    out = qa.answer("How much did the tickets cost?", [("note", "The concert was held in a park. Many people came.")])
    assert out["answerable"] is False and out["answer"] == NO_ANSWER


def test_qa_abstains_when_a_name_of_the_question_is_missing(smollm) -> None:
    """The default rule: the question hinges on a name/number the context never mentions."""
    from lmassist.tasks.qa_context import missing_names

    note = "Alice will bring the budget to the meeting. Bob will take notes. The meeting is on Monday."
    assert missing_names("Who will bring the budget in 2019?", note) == ["2019"]
    assert missing_names("What will Bob take?", note) == []  # names present (and the first word ignored)
    qa = QuestionAnswerer(smollm)
    assert qa.rule == "elsewhere"
    out = qa.answer("Who will bring the budget to Paris?", [("note", note)])
    assert out["answerable"] is False and out["answer"] == NO_ANSWER and out["missing_names"] == ["Paris"]
    ok = qa.answer("When is the meeting?", [("note", note)])
    assert ok["answerable"] is True and ok["answer"] == "Monday" and len(ok["words_elsewhere"]) < qa.elsewhere_min


def test_qa_abstains_when_the_context_does_not_raise_the_answer(smollm) -> None:
    """PMI: a span the model would guess without the context is not grounded in it."""
    qa = QuestionAnswerer(smollm, rule="pmi", pmi_min=1e9)
    out = qa.answer("When is the meeting?", [("note", "The meeting is on Monday.")])
    assert out["answerable"] is False and out["pmi"] is not None and out["candidates"]
    with pytest.raises(LMAssistError, match="abstention rule"):
        QuestionAnswerer(smollm, rule="bogus")


def test_qa_without_score_generates(no_score) -> None:
    qa = QuestionAnswerer(no_score)
    assert qa.method == "generate"
    out = qa.answer("Who will bring the budget?", [("n", "Alice will bring the budget.")])
    assert out["method"] == "generate" and isinstance(out["answer"], str)


def test_summarize_map_reduce_sees_every_chunk(smollm) -> None:
    paras = [f"Paragraph {i} is about the {topic}. The {topic} matters to the town council."
             for i, topic in enumerate(["river", "bridge", "school", "market", "library", "park"])]
    text = "\n\n".join(paras)
    s = Summarizer(smollm, "short", chunk_tokens=40)
    s.max_new = 16
    seen = []
    out = s.summarize(text, progress=lambda done, total: seen.append((done, total)))
    chunks = out["chunks"]
    assert len(chunks) >= 3
    joined = " ".join(c for c in s.chunks(text))
    assert all(p.split(".")[0] in joined for p in paras)  # every part of the input was in some chunk
    assert sum(c["tokens"] for c in chunks) >= smollm.count_tokens(text) - 10
    assert out["summary"]
    assert seen[-1][0] == seen[-1][1] == len(chunks) + 1


def test_summarize_completion_form(base_model) -> None:
    s = Summarizer(base_model, "short")
    s.max_new = 12
    out = s.summarize("The town opened a new library on Monday. It has ten thousand books and a cafe.")
    assert out["summary"] and len(out["chunks"]) == 1


MARKDOWN = """# Welcome

Read the [guide](https://example.com/guide) first.

- Open the `settings` file
- Save it

```python
print("hello")   # untouched
x = {"a": 1}
```
"""


@pytest.mark.parametrize("wrapped", [False, True], ids=["chat", "completion"])
def test_translate_keeps_markdown_and_code(smollm, wrapped) -> None:
    model = Wrapped(smollm, chat_template=False, can_score=True) if wrapped else smollm
    t = Translator(model, "French")
    seen = []
    out = t.translate_document(MARKDOWN, progress=lambda d, n: seen.append((d, n)))
    fence = MARKDOWN[MARKDOWN.index("```python"):]
    assert out.endswith(fence)  # the code block is byte-identical
    lines = out.splitlines()
    assert lines[0].startswith("# ")
    assert "](https://example.com/guide)" in out and "[" in out
    assert sum(1 for ln in lines if ln.startswith("- ")) == 2
    assert "`settings`" in out
    assert seen[-1] == (4, 4)


ARTICLE = (
    "(CNN)The city council approved a new flood barrier for the river on Tuesday. "
    "The barrier will cost twelve million dollars and take three years to build. "
    "Scroll down for video . "
    "Residents have asked for flood protection since the river burst its banks in 2019. "
    "The mayor said the barrier would protect four thousand homes along the river. "
    "Some shop owners worry that the building work will block the road to the market. "
    "Work on the flood barrier starts in the spring."
)


def test_extractive_summary_copies_sentences_from_the_input(smollm) -> None:
    from lmassist.tasks.summarize import clean_sentences

    s = Summarizer(smollm, "medium", mode="extractive", weights=(1.0, 1.0, 0.5))
    out = s.summarize(ARTICLE)
    picked = clean_sentences(out["summary"])
    source = clean_sentences(ARTICLE)
    assert len(picked) == 3 and all(p in source for p in picked)  # verbatim input sentences, input order
    assert [source.index(p) for p in picked] == sorted(source.index(p) for p in picked)
    assert "(CNN)" not in out["summary"] and "Scroll down" not in out["summary"]
    assert picked[0].startswith("The city council approved")  # the lead sentence carries the gist
    assert Summarizer(smollm, "short", mode="extractive").summarize(ARTICLE)["summary"].count(". ") <= 1


def test_summary_modes_default_to_extractive(smollm) -> None:
    assert Summarizer(smollm).mode == "extractive"
    assert Summarizer(smollm, mode="abstractive").mode == "abstractive"
    with pytest.raises(ValueError, match="mode"):
        Summarizer(smollm, mode="bogus")
