"""Task quality benchmarks: ``lmassist bench qa|summarize|translate`` and ``lmassist eval-task``.

Figures are printed, never asserted. Each benchmark runs its variants side by side on the same
labelled file in one process, with the simplest honest baseline beside them, and reports the time
each variant took (the machines are shared, so compare within a run).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import data_option, dev_file, each, peak_rss_mb, print_table
from lmassist.bench.docs import SETTINGS, run_docs_qa
from lmassist.bench.metrics import (
    chrf_bleu,
    halves,
    lead_sentences,
    load_jsonl,
    mean,
    qa_rows,
    qa_scores,
    rouge,
    says_no_answer,
    spread,
)
from lmassist.bench.sentiment import run_sentiment
from lmassist.commands.common import load_model, model_option
from lmassist.generation import LMAssistError
from lmassist.tasks.qa_answerer import (
    CALIBRATION,
    ELSEWHERE_MIN,
    HEADINGS,
    LENGTH_BONUS,
    LOCAL,
    MARGIN,
    MAX_MISSING,
    OVERLAP_MIN,
    PMI_MIN,
    READING,
    READINGS,
    SENTENCE_WEIGHT,
    QuestionAnswerer,
)
from lmassist.tasks.qa_context import content_words
from lmassist.tasks.summarize import W_CENTRAL, W_LEAD, Summarizer
from lmassist.tasks.translate import Translator

# -- QA --------------------------------------------------------------------------------------------


def run_qa(model: Any, rows: list[dict[str, Any]], variants: list[str], margins: list[float],
           pmis: list[float] | None = None, overlaps: list[float] | None = None,
           length_bonus: float | None = None, elsewheres: list[int] | None = None,
           sentence_weights: list[float] | None = None, sentences: int = 3,
           calibrations: list[float] | None = None, reading: str = READING) -> list[dict[str, Any]]:
    """Span extraction (never abstaining, and each abstention rule: margin, PMI, question overlap,
    the default missing-names + words-elsewhere rule, under each sentence weight and calibration)
    and free generation, from one extraction pass."""
    report = []
    for name in variants:
        if name == "spans":
            rules = {"margins": margins, "pmis": [PMI_MIN] if pmis is None else pmis,
                     "overlaps": [OVERLAP_MIN] if overlaps is None else overlaps,
                     "elsewheres": [ELSEWHERE_MIN] if elsewheres is None else elsewheres,
                     "weights": [SENTENCE_WEIGHT] if sentence_weights is None else sentence_weights,
                     "calibrations": [CALIBRATION] if calibrations is None else calibrations}
            report += _span_rows(model, rows, LENGTH_BONUS if length_bonus is None else length_bonus, sentences,
                                 reading, **rules)
        elif name in ("generate-chat", "generate-completion"):
            report.append(_generate_row(model, rows, name))
        else:
            raise LMAssistError(f"unknown QA variant {name!r}; choose from spans, generate-chat, generate-completion")
    return report


def _span_rows(model: Any, rows: list[dict[str, Any]], length_bonus: float, sentences: int, reading: str,
               margins: list[float], pmis: list[float], overlaps: list[float], elsewheres: list[int],
               weights: list[float], calibrations: list[float]) -> list[dict[str, Any]]:
    """One extraction pass, scored under every abstention rule, threshold, sentence weight and
    calibration asked for."""
    start = time.perf_counter()
    # rule="pmi" also computes the PMI, so every rule is reported from the same answers.
    qa = QuestionAnswerer(model, method="spans", rule="pmi", length_bonus=length_bonus, sentences=sentences,
                          reading=reading)
    extractions = [qa.extraction(r["question"], [("context", r["context"])]) for r in each(rows, "qa spans")]
    outs = [qa.decide(r["question"], ex) for r, ex in zip(rows, extractions, strict=True)]
    took = time.perf_counter() - start
    best = [o["candidates"][0] if o["candidates"] else None for o in outs]
    preds = [b["text"] if b else "" for b in best]

    def row(label: str, abstain: list[bool]) -> dict[str, Any]:
        return _qa_row(label, rows, preds, abstain, took)

    report = [row("spans, never abstain", [False] * len(rows))]
    for max_missing in (1.0, MAX_MISSING):
        for margin in margins:
            abstain = []
            for r, o, b in zip(rows, outs, best, strict=True):
                nq = max(1, len(content_words(r["question"])))
                ok = (b is not None and b["logprob"] >= o["unknown_logprob"] - margin
                      and len(o["missing_words"]) <= max_missing * nq)
                abstain.append(not ok)
            report.append(row(f"spans, margin {margin:g}" + ("" if max_missing >= 1 else f", missing<={max_missing:g}"),
                              abstain))
    names = [bool(o["missing_names"]) for o in outs]
    report.append(row("spans, missing names only", names))
    for t in pmis:
        report.append(row(f"spans, missing names or pmi<{t:g}",
                          [n or o["pmi"] is None or o["pmi"] < t for n, o in zip(names, outs, strict=True)]))
    for t in overlaps:
        report.append(row(f"spans, missing names or overlap<{t:g}",
                          [n or o["overlap"] is None or o["overlap"] < t for n, o in zip(names, outs, strict=True)]))
    for k in elsewheres:
        abstain = [n or o["words_elsewhere"] is None or (o["overlap"] or 0) < OVERLAP_MIN
                   or len(o["words_elsewhere"]) >= k for n, o in zip(names, outs, strict=True)]
        report.append(row(f"spans, missing names, overlap<{OVERLAP_MIN:g} or >={k} words elsewhere", abstain))
    for c in calibrations:
        for w in weights:
            for headings, local in ((False, False), (True, False), (True, True)):
                rule = QuestionAnswerer(model, method="spans", length_bonus=length_bonus, sentence_weight=w,
                                        headings=headings, local=local, sentences=sentences, calibration=c,
                                        reading=reading)
                decided = [rule.decide(r["question"], ex) for r, ex in zip(rows, extractions, strict=True)]
                default = (" (default)" if (w, headings, local, c, reading)
                           == (SENTENCE_WEIGHT, HEADINGS, LOCAL, CALIBRATION, READING) else "")
                label = (f"elsewhere rule, calibration {c:g}, prior {w:g}" + (", headings" if headings else "")
                         + (", local" if local else ""))
                report.append(_qa_row(label + default, rows, [o["answer"] for o in decided],
                                      [not o["answerable"] for o in decided], took))
    return report


def _generate_row(model: Any, rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Free generation in the chat or the completion prompt form, abstaining when the reply says so."""
    start = time.perf_counter()
    qa = QuestionAnswerer(model, method="generate")
    original = model.info.chat_template
    model.info.chat_template = name == "generate-chat"  # the prompt form under test, on the same model
    try:
        preds = [qa.answer(r["question"], [("context", r["context"])])["answer"] for r in each(rows, f"qa {name}")]
    finally:
        model.info.chat_template = original
    return _qa_row(name, rows, preds, [says_no_answer(p) for p in preds], time.perf_counter() - start)


def _qa_row(name: str, rows: list[dict[str, Any]], preds: list[str], abstain: list[bool], seconds: float) -> dict[str, Any]:
    """Exact match and F1 on the answerable rows, the abstention rate on the others: over all rows,
    then over each half (the tuning half and the held-out half, :func:`halves`)."""
    out: dict[str, Any] = {"variant": name}
    for label, keep in (("", lambda h: True), ("tune ", lambda h: h == "tune"), ("held ", lambda h: h != "tune")):
        ems, f1s, unans = [], [], []
        for r, p, a, h in zip(rows, preds, abstain, halves(rows), strict=True):
            if not keep(h):
                continue
            if r["answerable"]:
                em, f1 = (0.0, 0.0) if a else qa_scores(p, r["answers"])
                ems.append(em)
                f1s.append(f1)
            else:
                unans.append(a)
        if not label:
            out["exact_match"] = mean(ems)
        out.update({f"{label}f1": mean(f1s), f"{label}abstain": mean([float(x) for x in unans])})
    answerable = sum(bool(r["answerable"]) for r in rows)
    out.update({"answerable_n": answerable, "unanswerable_n": len(rows) - answerable, "seconds": seconds})
    return out


# -- summaries and translation ---------------------------------------------------------------------


SUMMARY_MODES = ("extractive", "extractive+lm", "abstractive")


def run_summaries(model: Any, rows: list[dict[str, Any]], variants: list[str],
                  modes: tuple[str, ...] | list[str] = ("abstractive",)) -> list[dict[str, Any]]:
    """ROUGE of each (length, mode) beside the first three sentences.

    ``extractive`` is the default mode (lead bias + centrality, asides compressed), ``extractive+lm``
    adds the model's PMI of each sentence as the summary (weight 0.2), ``abstractive`` the map-reduce
    generation.
    """
    refs = [r["summary"] for r in rows]
    report = [{"variant": "lead-3 sentences", **rouge([lead_sentences(r["document"]) for r in rows], refs), "seconds": 0.0}]
    for name in variants:
        for mode in modes:
            if mode not in SUMMARY_MODES:
                raise LMAssistError(f"unknown summary mode {mode!r}; choose from {', '.join(SUMMARY_MODES)}")
            start = time.perf_counter()
            weights = (W_LEAD, W_CENTRAL, 0.2) if mode == "extractive+lm" else None
            summarizer = Summarizer(model, name, mode=mode.split("+")[0], weights=weights)
            preds = [summarizer.summarize(r["document"])["summary"] for r in each(rows, f"summarize {mode}", "articles")]
            label = f"map-reduce {summarizer.form} ({name})" if mode == "abstractive" else f"{mode} ({name})"
            report.append({"variant": label, **rouge(preds, refs), "seconds": time.perf_counter() - start})
    return report


def run_translation(model: Any, rows: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    refs = [r[target] for r in rows]
    report = [{"variant": "copy source", **chrf_bleu([r["en"] for r in rows], refs), "seconds": 0.0}]
    start = time.perf_counter()
    translator = Translator(model, target, "en")
    preds = [translator.translate_inline(" ".join(r["en"].split())) for r in each(rows, "translate", "pairs")]
    report.append({"variant": f"{translator.form} prompt", **chrf_bleu(preds, refs), "seconds": time.perf_counter() - start})
    return report


# -- commands --------------------------------------------------------------------------------------


def _items(text: str, cast: Any = str) -> list[Any]:
    """A comma list from the command line, blanks dropped; an item that is not a ``cast`` is one line."""
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = "number" if cast in (int, float) else "value"
        raise LMAssistError(f"{text!r} is not a comma list of {kind}s (e.g. 0,0.5,1)") from None


def _show(what: str, model: Any, rows: list[dict[str, Any]], report: list[dict[str, Any]], as_json: bool,
          **extra: Any) -> None:
    print_table(f"{what}, {model.info.name}", report, as_json, {"model": model.info.name, "rows": len(rows), **extra})


reading_option = click.option(
    "--reading", type=click.Choice(READINGS), default=READING, show_default=True,
    help="qa: what the model reads when it scores an answer span: the span's sentence, or every passage read.")


@click.command("qa")
@model_option
@data_option("qa-dev.jsonl", "JSONL of {context, question, answers, answerable}")
@click.option("--limit", type=int, help="Use N rows spread evenly over the file.")
@click.option("--variants", default="spans,generate-chat,generate-completion", show_default=True)
@click.option("--margins", default="0,2,4,99", show_default=True,
              help="Abstention margins (nats) to report for spans, each with and without the missing-words rule.")
@click.option("--pmis", default="1,2,3", show_default=True,
              help="PMI thresholds (nats) to report for the pmi rule (missing names or low PMI).")
@click.option("--overlaps", default="0.3,0.4,0.5,0.6", show_default=True,
              help="Question-overlap thresholds to report for the overlap rule (missing names or low overlap).")
@click.option("--elsewheres", default="1,2,3", show_default=True,
              help="Counts of question words used outside the answer's sentence to report for the default rule.")
@click.option("--sentence-weights", default="0,2,4,8", show_default=True,
              help="Nats per unit of question overlap of a span's sentence, for the default rule.")
@click.option("--calibrations", default="0,0.5,0.75,1", show_default=True,
              help="Shares of each span's prior (its likelihood whatever is asked) taken off when ranking, "
                   "for the default rule.")
@click.option("--sentences", type=click.IntRange(1), default=3, show_default=True,
              help="Sentences (the best by BM25) that answer spans are cut from.")
@reading_option
@click.option("--length-bonus", type=float, default=None,
              help="Nats per token added to each span's log-likelihood when ranking (default: the task's).")
@click.option("--json", "as_json", is_flag=True)
def bench_qa(model: str | None, data: str, limit: int | None, variants: str, margins: str, pmis: str,
             overlaps: str, elsewheres: str, sentence_weights: str, calibrations: str, sentences: int,
             reading: str, length_bonus: float | None, as_json: bool) -> None:
    """QA exact match / token F1 (answerable) and abstention rate (unanswerable): spans vs free generation."""
    rows = spread(qa_rows(dev_file(data, "qa-dev.jsonl")), limit)
    lists = {"margins": _items(margins, float), "pmis": _items(pmis, float), "overlaps": _items(overlaps, float),
             "elsewheres": _items(elsewheres, int), "sentence_weights": _items(sentence_weights, float),
             "calibrations": _items(calibrations, float)}  # a bad list fails before the model loads
    llm = load_model(model)
    report = run_qa(llm, rows, _items(variants), length_bonus=length_bonus, sentences=sentences, reading=reading,
                    **lists)
    _show(f"qa on {len(rows)} rows", llm, rows, report, as_json)


EVAL_FIELDS = {"sentiment": ("text", "label"), "qa": ("context", "question", "answers", "answerable"),
               "summarize": ("document", "summary"), "translate": ("en",)}


@click.command("eval-task")
@click.argument("task")
@click.argument("data", nargs=-1, required=True, type=click.Path())
@model_option
@click.option("--limit", type=int, help="Evaluate the first N rows only.")
@click.option("--settings", "tune", is_flag=True, help="docs-qa: also score other answer settings on the same run.")
@reading_option
@click.option("--json", "as_json", is_flag=True)
def eval_task(task: str, data: tuple[str, ...], model: str | None, limit: int | None, tune: bool, reading: str,
              as_json: bool) -> None:
    """Print TASK's metrics on a labelled JSONL file, beside the simplest honest baseline.

    sentiment: accuracy, macro precision/recall/F1; qa: exact match and token F1 (SQuAD
    normalization), on rows with a context or naming a note in docs/ beside the file; summarize:
    ROUGE-1/2/L (rouge-score); translate: chrF and BLEU (sacrebleu). docs-qa DIR QUESTIONS.jsonl:
    indexes DIR, answers each question from it and prints retrieval hit@1/hit@3, token F1 and how
    often it abstains, for each half (the rows' split field, else even/odd rows).

    \b
    Examples:
      lmassist eval-task qa ../shared/data/eval/qa-dev.jsonl
      lmassist eval-task qa tests/data/notes-qa/questions.jsonl
      lmassist eval-task docs-qa ../shared/data/eval/folder-qa-dev/docs ../shared/data/eval/folder-qa-dev/questions.jsonl
    """
    if task == "docs-qa":
        _eval_docs_qa(data, model, limit, as_json, tune, reading)
        return
    if task not in EVAL_FIELDS:
        raise LMAssistError(f"eval-task knows sentiment, qa, docs-qa, summarize and translate, not {task!r}")
    if len(data) != 1:
        raise LMAssistError(f"eval-task {task} takes one data file, not {len(data)}")
    rows = qa_rows(data[0], limit) if task == "qa" else load_jsonl(data[0], limit)
    target = next((k for k in rows[0] if k not in ("en", "source")), "fr") if task == "translate" else ""
    need = EVAL_FIELDS[task] + ((target,) if target else ())
    missing = [k for k in need if k not in rows[0]]
    if missing:
        raise LMAssistError(f"{data[0]} rows need the fields {', '.join(need)}; missing {', '.join(missing)}")
    llm = load_model(model)
    if task == "sentiment":
        report = run_sentiment(llm, rows, ["default"])
    elif task == "qa":
        report = run_qa(llm, rows, ["spans"], [MARGIN], overlaps=sorted({0.3, 0.4, OVERLAP_MIN}), elsewheres=[1, 2, 3],
                        sentence_weights=sorted({0.0, SENTENCE_WEIGHT}), calibrations=sorted({0.0, CALIBRATION}),
                        reading=reading)
    elif task == "summarize":
        report = run_summaries(llm, rows, ["medium"], ("extractive", "abstractive"))
    else:
        report = run_translation(llm, rows, target)
    _show(f"{task} on {len(rows)} rows", llm, rows, report, as_json)


def _eval_docs_qa(data: tuple[str, ...], model: str | None, limit: int | None, as_json: bool, tune: bool,
                  reading: str) -> None:
    """``eval-task docs-qa DIR QUESTIONS.jsonl`` (or one folder holding docs/ and questions.jsonl)."""
    if len(data) == 1:
        data = (str(Path(data[0]) / "docs"), str(Path(data[0]) / "questions.jsonl"))
    if len(data) != 2 or not Path(data[0]).is_dir():
        raise LMAssistError("eval-task docs-qa takes a folder of notes and a questions file: "
                            "lmassist eval-task docs-qa DIR QUESTIONS.jsonl")
    rows = load_jsonl(data[1], limit)
    missing = [k for k in ("question", "answers", "answerable", "doc") if k not in rows[0]]
    if missing:
        raise LMAssistError(f"{data[1]} rows need the fields question, answers, answerable, doc; "
                            f"missing {', '.join(missing)}")
    llm = load_model(model)
    report = run_docs_qa(llm, Path(data[0]), rows, SETTINGS if tune else (), reading)
    _show(f"docs-qa on {len(rows)} questions over {data[0]}", llm, rows, report, as_json)


@click.command("summarize")
@model_option
@data_option("summarization-dev.jsonl", "JSONL of {document, summary, source}")
@click.option("--source", "only", type=click.Choice(["all", "cnn_dailymail", "bbc"]), default="cnn_dailymail", show_default=True)
@click.option("--limit", type=int, default=15, show_default=True)
@click.option("--lengths", default="medium", show_default=True, help="Comma list of summary lengths to run.")
@click.option("--modes", default=",".join(SUMMARY_MODES), show_default=True,
              help=f"Comma list of summary modes from: {', '.join(SUMMARY_MODES)}.")
@click.option("--memory/--no-memory", default=True, help="Also print peak memory of chunking a 10 KB vs a 10 MB file.")
@click.option("--json", "as_json", is_flag=True)
def bench_summarize(model: str | None, data: str, only: str, limit: int, lengths: str, modes: str,
                    memory: bool, as_json: bool) -> None:
    """ROUGE-1/2/L of extractive and map-reduce summaries vs the first three sentences; peak memory 10 KB vs 10 MB."""
    rows = load_jsonl(dev_file(data, "summarization-dev.jsonl"))
    rows = [r for r in rows if only == "all" or r.get("source", "").lower().startswith(only.split("_")[0])][:limit]
    if not rows:
        raise LMAssistError(f"no rows with source {only!r}")
    extra = _memory_figures(model) if memory else {}
    llm = load_model(model)
    report = run_summaries(llm, rows, _items(lengths), _items(modes))
    _show(f"summaries of {len(rows)} {only} articles", llm, rows, report, as_json, **extra)


def _memory_figures(model: str | None) -> dict[str, Any]:
    """Peak RSS of reading and chunking a 10 KB and a 10 MB file (``summarize --plan``), in fresh processes."""
    para = ("The committee reviewed the budget, the schedule and the staffing plan in detail. " * 6).strip()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in (("10KB", 10_000), ("10MB", 10_000_000)):
            path = Path(tmp) / f"{label}.txt"
            with path.open("w", encoding="utf-8") as f:
                written = 0
                while written < size:
                    written += f.write(para + "\n\n")
            args = ["summarize", "--plan", str(path)] + (["-m", model] if model else [])
            start = time.perf_counter()
            out[f"plan_{label}_peak_rss_mb"] = round(peak_rss_mb(args), 1)
            out[f"plan_{label}_seconds"] = round(time.perf_counter() - start, 1)
    out["peak_rss_growth_mb"] = round(out["plan_10MB_peak_rss_mb"] - out["plan_10KB_peak_rss_mb"], 1)
    return out


@click.command("translate")
@model_option
@click.option("--to", "target", default="fr", show_default=True, type=click.Choice(["fr", "de", "es"]))
@data_option("translation-en-TO-dev.jsonl", "JSONL of {en, TO} pairs")
@click.option("--limit", type=int, default=100, show_default=True, help="First N pairs of the dev file.")
@click.option("--json", "as_json", is_flag=True)
def bench_translate(model: str | None, target: str, data: str, limit: int, as_json: bool) -> None:
    """chrF and BLEU (sacrebleu) of sentence translation vs copying the source."""
    rows = load_jsonl(dev_file(data, f"translation-en-{target}-dev.jsonl"), limit)
    llm = load_model(model)
    _show(f"en->{target} on {len(rows)} pairs", llm, rows, run_translation(llm, rows, target), as_json)


COMMANDS = (bench_qa, bench_summarize, bench_translate)
