"""What the task-quality work on the default model relies on, asserted as behaviour (the figures
themselves are printed by ``lmassist bench sentiment|qa`` and ``lmassist eval-task``, never asserted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from lmassist.generation import LMAssistError, Model
from lmassist.tasks.qa import NO_ANSWER, QuestionAnswerer
from lmassist.tasks.qa_context import missing_names, question_overlap
from lmassist.tasks.sentiment_classifier import SentimentClassifier
from lmassist.tasks.sentiment_prompts import shot_order
from lmassist.tasks.sentiment_shots import HELD_OUT, SHOTS

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eval"


@pytest.fixture(scope="module")
def smollm(default_gguf) -> Iterator[Model]:
    """The real default model on one thread (a shared 2-core machine; see test_tasks_model.py)."""
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    model = Registry(PluginManager(load_entry_points=False)).load("llamacpp:smollm2-135m-instruct", threads=1)
    yield model
    model.close()


class Spy:
    """Records what a task asks ``score`` or ``score_many`` for, and passes it to the real model."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        self.calls.append((prompt, list(continuations)))
        return self.inner.score(prompt, continuations)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        self.calls += [(prompt, list(conts)) for prompt, conts in requests]
        return self.inner.score_many(requests)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_sentiment_shots_are_hand_written_not_dev_rows() -> None:
    """Few-shot examples must not come from the data the figures are measured on."""
    assert len(SHOTS) == 24 and [lab for _, lab in SHOTS] == ["positive", "negative"] * 12
    dev = DEV / "sentiment-dev.jsonl"
    if not dev.is_file():
        pytest.skip("no shared dev file here")
    rows = {json.loads(line)["text"].strip() for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert not rows & {text for text, _ in SHOTS}


def test_shot_orders_are_the_same_shots_with_opposite_last_labels() -> None:
    labels = ("positive", "negative")
    one, two = shot_order(labels, 24, 1), shot_order(labels, 24, 2)
    assert sorted(one) == sorted(two) == sorted(SHOTS) and one != two
    assert one[-1][1] == "positive" and two[-1][1] == "negative"  # the recency biases cancel


def test_default_sentiment_is_an_ensemble_of_shot_orders_scoring_whole_label_words(smollm) -> None:
    clf = SentimentClassifier(smollm)
    assert clf.shots == 24 and len(clf.orders) == 2 and clf.calibration == "held-out"
    spy = Spy(smollm)
    clf.model = spy  # type: ignore[assignment]
    texts = ["a wonderful , moving and funny film .", "a boring , ugly mess ."]
    out = clf.classify_many(texts)
    assert [o["label"] for o in out] == ["positive", "negative"]
    assert all(conts == [" positive", " negative"] for _, conts in spy.calls)  # whole label words
    mine = [prompt for prompt, _ in spy.calls if prompt.endswith(tuple(f"Review: {t}\nSentiment:" for t in texts))]
    assert len({p.rsplit("Review: ", 1)[0] for p in mine}) == 2 and len(mine) == 4  # each text under both orders
    assert len(spy.calls) == 4 + 2 * len(HELD_OUT)  # and the held-out reviews once per order


def test_held_out_reviews_are_balanced_and_used_nowhere_else() -> None:
    assert len(HELD_OUT) == 40 and sorted(lab for _, lab in HELD_OUT) == ["negative"] * 20 + ["positive"] * 20
    assert not {t for t, _ in HELD_OUT} & {t for t, _ in SHOTS}
    dev = DEV / "sentiment-dev.jsonl"
    if not dev.is_file():
        pytest.skip("no shared dev file here")
    rows = {json.loads(line)["text"].strip() for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert not rows & {text for text, _ in HELD_OUT}


def test_held_out_calibration_moves_the_threshold_and_is_cached(smollm, tmp_path: Path) -> None:
    """One shot order leans negative; the held-out reviews measure the lean, and a text the raw
    scores call negative by less than it becomes positive. The threshold is computed once per model
    and prompt: a second classifier reads it from the cache file, and a damaged file is recomputed."""
    cache = tmp_path / "calibration.json"
    one_order = {"forms": ("review",), "orders": (1,)}
    text = "it is what it is ."
    raw = SentimentClassifier(smollm, calibration="none", **one_order).classify(text)
    steps: list[tuple[int, int | None]] = []
    cal = SentimentClassifier(smollm, cache=cache, **one_order)
    result = cal.classify_many([text], progress=lambda done, total: steps.append((done, total)))[0]
    (threshold, _), = cal.offsets().values()
    odds = math.log(raw["scores"]["positive"] / raw["scores"]["negative"])
    assert threshold < odds < 0 and raw["label"] == "negative" and result["label"] == "positive"
    assert steps[-1] == (len(HELD_OUT) + 1, len(HELD_OUT) + 1)  # the calibration shows in the progress
    assert list(json.loads(cache.read_text()).values()) == [pytest.approx(threshold)]

    spy = Spy(smollm)
    again = SentimentClassifier(spy, cache=cache, **one_order)  # type: ignore[arg-type]
    assert again.classify(text)["label"] == "positive" and len(spy.calls) == 1  # the text only

    cache.write_text("{not json")
    spy.calls.clear()
    fresh = SentimentClassifier(spy, cache=cache, **one_order)  # type: ignore[arg-type]
    assert fresh.offsets() == cal.offsets() and len(spy.calls) == len(HELD_OUT)


def test_held_out_calibration_needs_two_labels_and_scores(smollm) -> None:
    assert SentimentClassifier(smollm, neutral=True).calibration == "none"  # no neutral held-out reviews
    with pytest.raises(LMAssistError, match="unknown calibration 'always'; choose from held-out"):
        SentimentClassifier(smollm, calibration="always")


def test_default_sentiment_on_hedged_reviews(smollm) -> None:
    """Mixed verdicts, the kind the dev set is full of, in both directions."""
    clf = SentimentClassifier(smollm)
    out = clf.classify_many([
        "the jokes do not always land , but it is a sweet , generous film .",
        "beautifully shot , yet so slow and empty that it becomes a chore .",
    ])
    assert [o["label"] for o in out] == ["positive", "negative"]


def test_question_overlap_and_accents() -> None:
    assert question_overlap("When did the Normans conquer England?", "The Normans conquered England in 1066.") == 1.0
    assert question_overlap("What did the Normans import?", "The Normans exported wool.") == 0.5
    assert missing_names("When did Herve serve in Italy?", "Hervé served in Italy in the 1050s.") == []
    assert missing_names("When did Herve serve in Spain?", "Hervé served in Italy in the 1050s.") == ["Spain"]


def test_qa_abstains_when_the_answer_sentence_does_not_match_the_question(smollm) -> None:
    """Every name of the question is in the context, but no sentence says what it asks."""
    note = "Alice will bring the budget to the meeting. Bob will take notes. The meeting is on Monday."
    qa = QuestionAnswerer(smollm)
    out = qa.answer("When will the cake be baked?", [("note", note)])
    assert out["missing_names"] == [] and out["overlap"] < qa.overlap_min
    assert out["answerable"] is False and out["answer"] == NO_ANSWER
    ok = qa.answer("Who will bring the budget?", [("note", note)])
    assert ok["answerable"] is True and ok["answer"] == "Alice"


def test_qa_length_bonus_prefers_the_complete_span(smollm) -> None:
    """Without a bonus per token the shortest plausible span wins; with it, the whole one can (an
    option, off by default: on the whole dev file it lowered token F1)."""
    text = "The Normans ruled Sicily in the 11th and 12th centuries. Their capital was Palermo."
    plain = QuestionAnswerer(smollm, length_bonus=0.0).answer("When did the Normans rule Sicily?", [("t", text)])
    bonus = QuestionAnswerer(smollm, length_bonus=0.5).answer("When did the Normans rule Sicily?", [("t", text)])
    assert len(bonus["answer"].split()) >= len(plain["answer"].split())
    assert "11th" in bonus["answer"] and bonus["answerable"] is True


def test_channel_scores_the_review_after_each_label(smollm) -> None:
    """Noisy channel: the same review tokens are scored after each label line, and a clearly
    positive (negative) review is likelier after "Sentiment: positive" ("negative")."""
    spy = Spy(smollm)
    clf = SentimentClassifier(spy, forms=("channel",), calibration="none")  # type: ignore[arg-type]
    texts = ["a wonderful , moving and funny film .", "a boring , ugly mess ."]
    out = clf.classify_many(texts)
    assert [o["label"] for o in out] == ["positive", "negative"]
    assert len(spy.calls) == 2 * 2 * 2  # two texts, two shot orders, one prompt per label
    for prompt, conts in spy.calls:
        assert prompt.endswith(("Sentiment: positive\nReview:", "Sentiment: negative\nReview:"))
        assert len(conts) == 1 and conts[0].strip() in texts  # the review is what is scored
    prefixes = {prompt.rsplit("Sentiment: ", 1)[0] for prompt, _ in spy.calls}
    assert len(prefixes) == 2  # one shot prefix per order, shared by both labels (prefix cache)
    assert all(p.startswith("Sentiment: ") and "\nReview: " in p for p in prefixes)  # shots label-first too


def test_sentiment_task_direction_option(smollm) -> None:
    from lmassist.tasks.sentiment import SentimentTask
    from lmassist.tasks.sentiment_prompts import DIRECTIONS

    task = SentimentTask()
    for direction, forms in DIRECTIONS.items():
        values = {"text": "a wonderful , moving and funny film .", "direction": direction, "calibration": "none"}
        data = task.run(smollm, values).data
        assert data["forms"] == list(forms) and data["results"][0]["label"] == "positive"
    with pytest.raises(LMAssistError, match="unknown direction"):
        task.run(smollm, {"text": "fine .", "direction": "sideways"})
