"""Sentiment benchmarks: ``lmassist bench sentiment`` (prompt variants side by side).

Figures are printed, never asserted; every variant runs on the same labelled rows in one process,
beside the majority class, with the time each took (compare within a run: the machines are shared).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import click

from lmassist.bench.common import data_option, dev_file, print_table, report
from lmassist.bench.metrics import classification_metrics, load_jsonl, spread
from lmassist.commands.common import load_model, model_option
from lmassist.generation import LMAssistError
from lmassist.tasks.sentiment_classifier import SentimentClassifier

# -- sentiment -------------------------------------------------------------------------------------

SENTIMENT_VARIANTS: dict[str, dict[str, Any]] = {
    # The task's default: 24 shots, two shot orders averaged, whole label words, held-out calibration.
    # Every other variant is uncalibrated unless it says so.
    "default": {"calibration": "held-out"},
    "default+cal": {"calibration": "content-free"},
    "default+batchcal": {"calibration": "batch"},
    "direct": {"forms": ("review",)},  # 24 shots, two orders, P(label | review): the default uncalibrated
    "channel": {"forms": ("channel",)},  # 24 shots, two orders, P(review | label)
    "both": {"forms": ("review", "channel")},  # the two above averaged
    "review-24shot-order1": {"forms": ("review",), "shots": 24, "orders": (1,)},
    "review-24shot-order1+heldout": {"forms": ("review",), "shots": 24, "orders": (1,), "calibration": "held-out"},
    "review-24shot-order2+heldout": {"forms": ("review",), "shots": 24, "orders": (2,), "calibration": "held-out"},
    "review-4shot-first-token": {"forms": ("review",), "shots": 4, "suffix": "", "orders": 1},
    "review-4shot-first-token+cal": {"forms": ("review",), "shots": 4, "suffix": "", "orders": 1,
                                     "calibration": "content-free"},
    "review-8shot-word": {"forms": ("review",), "shots": 8, "orders": 1},
    "movie-8shot-word": {"forms": ("movie",), "shots": 8, "orders": 1},
    "liked-8shot-word": {"forms": ("liked",), "shots": 8, "orders": 1},
    "ensemble-8shot-word": {"forms": ("review", "movie", "liked"), "shots": 8, "suffix": "\n", "orders": 1},
    "ensemble-8shot-word+cal": {"forms": ("review", "movie", "liked"), "shots": 8, "suffix": "\n", "orders": 1,
                                "calibration": "content-free"},
    "review-4shot-first-token+batchcal": {"forms": ("review",), "shots": 4, "suffix": "", "calibration": "batch",
                                          "orders": 1},
    "review-4shot-2orders": {"forms": ("review",), "shots": 4, "suffix": "", "orders": 2},
    "review-4shot-generate": {"method": "generate"},
}
DEFAULT_SENTIMENT = ("default,default+cal,default+batchcal,direct,channel,both,review-4shot-first-token,"
                     "review-4shot-first-token+cal,review-4shot-2orders")



def run_sentiment(model: Any, rows: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    gold = [r["label"] for r in rows]
    majority = Counter(gold).most_common(1)[0][0]
    report = [{"variant": "majority-class", **classification_metrics(gold, [majority] * len(gold)), "seconds": 0.0}]
    for name in variants:
        if name not in SENTIMENT_VARIANTS:
            raise LMAssistError(f"unknown variant {name!r}; choose from {', '.join(SENTIMENT_VARIANTS)}")
        start = time.perf_counter()
        clf = SentimentClassifier(model, **{"calibration": "none", **SENTIMENT_VARIANTS[name]})
        pred = [r["label"] for r in clf.classify_many([r["text"] for r in rows])]
        report.append({"variant": name, **classification_metrics(gold, pred), "seconds": time.perf_counter() - start})
    return report



def _items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


HALVES = {"all": slice(None), "tune": slice(0, None, 2), "held-out": slice(1, None, 2)}
THROUGHPUT_ROWS = 40


@click.command("sentiment")
@model_option
@data_option("sentiment-dev.jsonl", "Labelled JSONL ({text, label})")
@click.option("--limit", type=int, help="Use N rows spread evenly over the file (--throughput: 40 by default).")
@click.option("--half", type=click.Choice(list(HALVES)), default="all", show_default=True,
              help="tune: the even rows, to choose a method on; held-out: the odd rows, to report it on.")
@click.option("--variants", default=DEFAULT_SENTIMENT, show_default=True,
              help=f"Comma list from: {', '.join(SENTIMENT_VARIANTS)}.")
@click.option("--throughput", is_flag=True,
              help="Instead of accuracy: reviews/s batched vs one at a time, and our prompt tokens/s beside "
              "raw llama.cpp prompt evaluation of the same tokens, in one run.")
@click.option("--multi-seq", is_flag=True,
              help="With --throughput on llama.cpp: also several sequences per decode sharing the few-shot "
              "prefix (8 and 32) vs one at a time.")
@click.option("--json", "as_json", is_flag=True)
def bench_sentiment(model: str | None, data: str, limit: int | None, half: str, variants: str, throughput: bool,
                    multi_seq: bool, as_json: bool) -> None:
    """Sentiment accuracy of prompt variants (calibration on/off, ensembles) vs the majority class.

    \b
    Examples:
      lmassist bench sentiment --variants default,review-24shot-order1+heldout --half tune
      lmassist bench sentiment --throughput --limit 100
      lmassist bench sentiment --throughput --multi-seq --limit 32
    """
    rows = load_jsonl(dev_file(data, "sentiment-dev.jsonl"))[HALVES[half]]
    rows = spread(rows, limit if limit or not throughput else THROUGHPUT_ROWS)
    llm = load_model(model)
    if throughput:
        from lmassist.bench.throughput import measure_throughput

        texts = [r["text"] for r in rows]
        figures = measure_throughput(llm, texts)
        if multi_seq and llm.info.backend == "llamacpp":
            from lmassist.bench.multiseq import measure_multi_sequence

            figures.update(measure_multi_sequence(llm, texts))
        report(figures, {}, as_json, width=30)
        return
    print_table(f"sentiment on {len(rows)} rows ({half}), {llm.info.name}", run_sentiment(llm, rows, _items(variants)),
                as_json, {"model": llm.info.name, "rows": len(rows), "half": half})



COMMANDS = (bench_sentiment,)
