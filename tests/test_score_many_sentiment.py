"""Sentiment scores in batches (``Model.score_many``) and streams its records: ``sentiment --per-line``
over a folder writes one JSON object per line, in input order, as each batch is labelled."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from lmassist.tasks import sentiment as sentiment_task
from lmassist.tasks.base import TaskInput
from lmassist.tasks.sentiment import SentimentTask

SMOLLM = "llamacpp:smollm2-135m-instruct"
REVIEWS = {
    "a.txt": "a wonderful, moving film with great performances\n\nboring, slow and far too long\n",
    "b.txt": "i loved every minute of it\nthe worst movie of the year\nthe plot is a mess\n",
}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir()
    for name, text in REVIEWS.items():
        (folder / name).write_text(text)
    return folder


def test_per_line_over_a_folder_streams_one_record_per_line_in_order(tmp_path):
    folder = _folder(tmp_path)
    proc = run_cli("sentiment", str(folder), "--per-line", "-m", SMOLLM, timeout=600)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    want = [(str(folder / name), i, line.strip()) for name, text in sorted(REVIEWS.items())
            for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    assert [(r["source"], r["line"], r["text"]) for r in records] == want
    # the same labels as labelling each file on its own, in one (non-streamed) run
    for name in sorted(REVIEWS):
        single = run_cli("sentiment", str(folder / name), "--per-line", "--json", "-m", SMOLLM, timeout=600)
        assert single.returncode == 0, single.stderr
        expected = [r["label"] for r in json.loads(single.stdout)["results"]]
        assert [r["label"] for r in records if r["source"] == str(folder / name)] == expected
    assert {r["label"] for r in records} == {"positive", "negative"}


def test_records_batch_across_inputs_and_yield_before_the_last_input_is_read(smollm, monkeypatch):
    monkeypatch.setattr(sentiment_task, "STREAM_BATCH", 3)
    calls: list[int] = []
    score_many = smollm.score_many

    def spy(requests):
        calls.append(len(requests))
        return score_many(requests)

    monkeypatch.setattr(smollm, "score_many", spy)
    pulled: list[str] = []

    def inputs():
        for name, text in [*sorted(REVIEWS.items()), ("c.txt", "an instant classic")]:
            pulled.append(name)
            yield TaskInput(name, text)

    stream = SentimentTask().records(smollm, {"per_line": True, "calibration": "none"}, inputs())
    first = next(stream)
    # the first batch is a.txt's two lines and b.txt's first: out before c.txt is read
    assert (first["source"], first["line"]) == ("a.txt", 1) and pulled == ["a.txt", "b.txt"]
    rest = list(stream)
    assert [(r["source"], r["line"]) for r in [first, *rest]] == [
        ("a.txt", 1), ("a.txt", 3), ("b.txt", 1), ("b.txt", 2), ("b.txt", 3), ("c.txt", 1)]
    assert max(calls) == 3 and calls.count(3) >= 2  # three texts per score_many call (two shot orders)
    monkeypatch.undo()


def test_a_cancelled_stream_yields_no_partial_batch(smollm):
    from lmassist.generation import CancelToken

    cancel = CancelToken()
    cancel.cancel()
    records = list(SentimentTask().records(smollm, {"per_line": True, "calibration": "none"},
                                           [TaskInput("a.txt", REVIEWS["a.txt"])], cancel=cancel))
    assert records == []


def test_a_parallel_safe_model_labels_texts_concurrently_in_input_order():
    """With ``--concurrency N`` a server-like model (no scoring, ``parallel_safe``) gets up to N
    generations at once; the records still come out in input order. A local model never overlaps."""
    import threading
    import time

    from lmassist.generation import ModelInfo
    from lmassist.generation.model import Model

    class Server(Model):
        info = ModelInfo(name="test:server", backend="test", context_length=4096, chat_template=False)
        parallel_safe = True

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.in_flight = self.most = 0

        def count_tokens(self, text):
            return len(text.split())

        def stream_pieces(self, request):
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            time.sleep(0.05)
            with self.lock:
                self.in_flight -= 1
            review = request.prompt.rsplit("Review:", 1)[-1]  # the text being labelled
            yield " positive" if "good" in review else " negative"

    texts = [f"{'good' if i % 3 else 'bad'} film number {i}" for i in range(12)]
    inputs = [TaskInput("reviews.txt", "\n".join(texts))]
    for concurrency, overlapped in ((4, True), (1, False)):
        model = Server()
        records = list(SentimentTask().records(
            model, {"per_line": True, "method": "generate", "concurrency": concurrency}, inputs))
        assert [r["text"] for r in records] == texts
        assert [r["label"] for r in records] == ["positive" if "good" in t else "negative" for t in texts]
        assert (model.most > 1) is overlapped
