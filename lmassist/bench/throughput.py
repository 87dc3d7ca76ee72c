"""Sentiment throughput: ``lmassist bench sentiment --throughput``.

Three ways through the same reviews, side by side in one process: the task's scoring as it runs
(``Model.score_many``, batched where the backend batches), the same scoring one pair at a time (the
contract's fallback), and, on llama.cpp, raw prompt evaluation of exactly the tokens our scoring
evaluates (each prompt after its few-shot prefix, the prefix kept in the cache): the compute limit
of the machine for this work. A ratio near 1 against raw means nothing is spent twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lmassist.generation import Model, common_prefix_length
from lmassist.tasks.sentiment_classifier import SentimentClassifier


def _prompts(clf: SentimentClassifier, texts: list[str]) -> list[tuple[str, str]]:
    """(prefix, prompt) for each view and text: what scoring evaluates, view by view."""
    return [(prefix, form.prompt(prefix, t)) for form, prefix in clf.views for t in texts]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _one_at_a_time(model: Model) -> Callable[[], None]:
    """Make ``model.score_many`` the contract's one-pair-at-a-time default; returns the undo."""
    model.score_many = lambda requests: Model.score_many(model, requests)  # type: ignore[method-assign]
    return lambda: delattr(model, "score_many")


def _raw_llamacpp(model: Any, pairs: list[tuple[str, str]]) -> tuple[int, float]:
    """Raw ``Llama.eval`` of each prompt's tokens after its prefix (prefix evaluated once, untimed)."""
    llm = model.llama
    tokenize = lambda s: llm.tokenize(s.encode("utf-8"), add_bos=True, special=True)  # noqa: E731
    done_prefix: list[int] = []
    tokens, seconds = 0, 0.0
    for prefix, prompt in pairs:
        ids = tokenize(prompt)
        keep = common_prefix_length(tokenize(prefix), ids) - 1
        if done_prefix != ids[:keep]:
            llm.reset()
            llm.eval(ids[:keep])
            done_prefix = ids[:keep]
        llm.n_tokens = keep  # eval drops the cache from here on
        start = time.perf_counter()
        llm.eval(ids[keep:])
        seconds += time.perf_counter() - start
        tokens += len(ids) - keep
    return tokens, seconds


def measure_throughput(model: Model, texts: list[str]) -> dict[str, Any]:
    """Reviews/s and prompt tokens/s, batched vs one at a time vs raw llama.cpp (where it is one)."""
    clf = SentimentClassifier(model)
    clf.classify_many(texts[:2])  # calibration and the prefixes, outside the timings
    pairs = _prompts(clf, texts)
    tokens = sum(model.count_tokens(p) - model.count_tokens(prefix) for prefix, p in pairs)
    batched, t_batched = _timed(lambda: clf.classify_many(texts))
    undo = _one_at_a_time(model)
    try:
        single, t_single = _timed(lambda: clf.classify_many(texts))
    finally:
        undo()
    figures: dict[str, Any] = {
        "model": model.info.name, "device": model.info.device or "cpu", "reviews": len(texts),
        "views": len(clf.views), "prompt_tokens": tokens,
        "batched_seconds": round(t_batched, 2), "one_at_a_time_seconds": round(t_single, 2),
        "batched_reviews_per_s": round(len(texts) / t_batched, 2),
        "one_at_a_time_reviews_per_s": round(len(texts) / t_single, 2),
        "batched_vs_one_at_a_time": round(t_single / t_batched, 3),
        "same_labels": [a["label"] for a in batched] == [b["label"] for b in single],
    }
    if model.info.backend == "llamacpp":
        tokens, t_raw = _raw_llamacpp(model, pairs)  # the exact tokens, counted by llama.cpp's tokenizer
        figures.update(prompt_tokens=tokens, raw_seconds=round(t_raw, 2),
                       raw_prompt_tokens_per_s=round(tokens / t_raw, 1), ours_vs_raw=round(t_raw / t_batched, 3))
    figures["ours_prompt_tokens_per_s"] = round(tokens / t_batched, 1)
    return figures
