"""Task quality benchmarks: ``lmassist bench sentiment|qa`` and ``lmassist eval-task``.

Figures are printed, never asserted. Each benchmark runs its variants side by side on the same
labelled file in one process, with the simplest honest baseline beside them, and reports the time
each variant took (the machines are shared, so compare within a run). Registered from
:mod:`lmassist.tasks.builtin`'s ``register_commands``.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from lmassist.commands.common import model_option
from lmassist.generation import LMAssistError

EVAL_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eval"


def eval_file(name: str) -> Path:
    return (EVAL_DIR / name).resolve()


def load_jsonl(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise LMAssistError(f"no such data file: {path}")
    rows = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise LMAssistError(f"{path}:{n} is not valid JSON ({e})") from None
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise LMAssistError(f"{path} has no rows")
    return rows


def spread(rows: list[dict[str, Any]], limit: int | None, key: str) -> list[dict[str, Any]]:
    """``limit`` rows taken evenly across the file so both classes stay represented."""
    if not limit or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


# -- metrics ---------------------------------------------------------------------------------------


def classification_metrics(gold: list[str], pred: list[str]) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1 (the few lines sklearn would cost 1 s of import for)."""
    labels = sorted(set(gold))
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    ps, rs, fs = [], [], []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        ps.append(prec)
        rs.append(rec)
        fs.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    n = len(labels)
    return {"accuracy": acc, "precision": sum(ps) / n, "recall": sum(rs) / n, "macro_f1": sum(fs) / n}


def squad_normalize(s: str) -> str:
    """SQuAD's official answer normalization: lower case, no punctuation, articles or extra spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(pred: str, gold: str) -> float:
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def qa_scores(pred: str, answers: list[str]) -> tuple[float, float]:
    em = max(float(squad_normalize(pred) == squad_normalize(a)) for a in answers)
    f1 = max(squad_f1(pred, a) for a in answers)
    return em, f1


_ABSTAIN = re.compile(r"does not (contain|say|mention|state)|doesn't|not (mentioned|stated|given)|\bunknown\b|no answer|cannot answer", re.I)


def says_no_answer(text: str) -> bool:
    return bool(_ABSTAIN.search(text))


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
    from lmassist.tasks.sentiment import SentimentClassifier

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


# -- QA --------------------------------------------------------------------------------------------


def run_qa(model: Any, rows: list[dict[str, Any]], variants: list[str], margins: list[float],
           pmis: list[float] | None = None, overlaps: list[float] | None = None,
           length_bonus: float | None = None, elsewheres: list[int] | None = None) -> list[dict[str, Any]]:
    """Span extraction (never abstaining, and each abstention rule: margin, PMI, question overlap,
    the default missing-names + words-elsewhere rule) and free generation, from one extraction pass."""
    from lmassist.tasks.qa import ELSEWHERE_MIN, LENGTH_BONUS, OVERLAP_MIN, PMI_MIN, QuestionAnswerer

    report = []
    for name in variants:
        start = time.perf_counter()
        if name == "spans":
            from lmassist.tasks.qa import MAX_MISSING, content_words

            # rule="pmi" also computes the PMI, so every rule is reported from the same answers.
            qa = QuestionAnswerer(model, method="spans", rule="pmi",
                                  length_bonus=LENGTH_BONUS if length_bonus is None else length_bonus)
            outs = [qa.answer(r["question"], [("context", r["context"])]) for r in rows]
            took = time.perf_counter() - start
            best = [o["candidates"][0] if o["candidates"] else None for o in outs]
            preds = [b["text"] if b else "" for b in best]
            report.append(_qa_row("spans, never abstain", rows, preds, [False] * len(rows), took))
            for max_missing in (1.0, MAX_MISSING):
                for margin in margins:
                    abstain = []
                    for r, o, b in zip(rows, outs, best, strict=True):
                        nq = max(1, len(content_words(r["question"])))
                        ok = (b is not None and b["logprob"] >= o["unknown_logprob"] - margin
                              and len(o["missing_words"]) <= max_missing * nq)
                        abstain.append(not ok)
                    label = f"spans, margin {margin:g}" + ("" if max_missing >= 1 else f", missing<={max_missing:g}")
                    report.append(_qa_row(label, rows, preds, abstain, took))
            names = [bool(o["missing_names"]) for o in outs]
            report.append(_qa_row("spans, missing names only", rows, preds, names, took))
            for t in pmis if pmis is not None else [PMI_MIN]:
                abstain = [n or o["pmi"] is None or o["pmi"] < t for n, o in zip(names, outs, strict=True)]
                report.append(_qa_row(f"spans, missing names or pmi<{t:g}", rows, preds, abstain, took))
            for t in overlaps if overlaps is not None else [OVERLAP_MIN]:
                abstain = [n or o["overlap"] is None or o["overlap"] < t for n, o in zip(names, outs, strict=True)]
                report.append(_qa_row(f"spans, missing names or overlap<{t:g}", rows, preds, abstain, took))
            for k in elsewheres if elsewheres is not None else [ELSEWHERE_MIN]:
                abstain = [n or o["words_elsewhere"] is None or not o["overlap"] or len(o["words_elsewhere"]) >= k
                           for n, o in zip(names, outs, strict=True)]
                default = " (default)" if k == ELSEWHERE_MIN else ""
                report.append(_qa_row(f"spans, missing names or >={k} words elsewhere{default}", rows, preds,
                                      abstain, took))
            continue
        if name not in ("generate-chat", "generate-completion"):
            raise LMAssistError(f"unknown QA variant {name!r}; choose from spans, generate-chat, generate-completion")
        qa = QuestionAnswerer(model, method="generate")
        form = name.split("-")[1]
        original = model.info.chat_template
        model.info.chat_template = form == "chat"  # the prompt form under test, on the same model
        try:
            preds = [qa.answer(r["question"], [("context", r["context"])])["answer"] for r in rows]
        finally:
            model.info.chat_template = original
        report.append(_qa_row(name, rows, preds, [says_no_answer(p) for p in preds], time.perf_counter() - start))
    return report


def _qa_row(name: str, rows: list[dict[str, Any]], preds: list[str], abstain: list[bool], seconds: float) -> dict[str, Any]:
    ems, f1s, unans = [], [], []
    for r, p, a in zip(rows, preds, abstain, strict=True):
        if r["answerable"]:
            em, f1 = (0.0, 0.0) if a else qa_scores(p, r["answers"])
            ems.append(em)
            f1s.append(f1)
        else:
            unans.append(a)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"variant": name, "exact_match": mean(ems), "f1": mean(f1s),
            "unanswerable_abstained": mean([float(x) for x in unans]),
            "answerable_n": len(ems), "unanswerable_n": len(unans), "seconds": seconds}


# -- summaries and translation ---------------------------------------------------------------------


def lead_sentences(text: str, n: int = 3) -> str:
    from lmassist.tasks.chunking import split_sentences

    return " ".join(split_sentences(" ".join(text.split()))[:n])


def rouge(preds: list[str], refs: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 with Google's rouge-score (Porter stemming), as the papers report it."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise LMAssistError("ROUGE needs the rouge-score package: pip install rouge-score") from None
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for p, r in zip(preds, refs, strict=True):
        for k, v in scorer.score(r, p).items():
            sums[k] += v.fmeasure
    return {k: v / len(preds) for k, v in sums.items()}


def chrf_bleu(preds: list[str], refs: list[str]) -> dict[str, float]:
    try:
        import sacrebleu
    except ImportError:
        raise LMAssistError("chrF and BLEU need sacrebleu: pip install sacrebleu") from None
    return {"chrF": sacrebleu.corpus_chrf(preds, [refs]).score, "BLEU": sacrebleu.corpus_bleu(preds, [refs]).score}


SUMMARY_MODES = ("extractive", "extractive+lm", "abstractive")


def run_summaries(model: Any, rows: list[dict[str, Any]], variants: list[str],
                  modes: tuple[str, ...] | list[str] = ("abstractive",)) -> list[dict[str, Any]]:
    """ROUGE of each (length, mode) beside the first three sentences.

    ``extractive`` is the default mode (lead bias + centrality, asides compressed), ``extractive+lm``
    adds the model's PMI of each sentence as the summary (weight 0.2), ``abstractive`` the map-reduce
    generation.
    """
    from lmassist.tasks.summarize import W_CENTRAL, W_LEAD, Summarizer

    refs = [r["summary"] for r in rows]
    report = [{"variant": "lead-3 sentences", **rouge([lead_sentences(r["document"]) for r in rows], refs), "seconds": 0.0}]
    for name in variants:
        for mode in modes:
            if mode not in SUMMARY_MODES:
                raise LMAssistError(f"unknown summary mode {mode!r}; choose from {', '.join(SUMMARY_MODES)}")
            start = time.perf_counter()
            weights = (W_LEAD, W_CENTRAL, 0.2) if mode == "extractive+lm" else None
            summarizer = Summarizer(model, name, mode=mode.split("+")[0], weights=weights)
            preds = [summarizer.summarize(r["document"])["summary"] for r in rows]
            label = f"map-reduce {summarizer.form} ({name})" if mode == "abstractive" else f"{mode} ({name})"
            report.append({"variant": label, **rouge(preds, refs), "seconds": time.perf_counter() - start})
    return report


def run_translation(model: Any, rows: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    from lmassist.tasks.translate import Translator

    refs = [r[target] for r in rows]
    report = [{"variant": "copy source", **chrf_bleu([r["en"] for r in rows], refs), "seconds": 0.0}]
    start = time.perf_counter()
    translator = Translator(model, target, "en")
    preds = [translator.translate_inline(" ".join(r["en"].split())) for r in rows]
    report.append({"variant": f"{translator.form} prompt", **chrf_bleu(preds, refs), "seconds": time.perf_counter() - start})
    return report


# -- commands --------------------------------------------------------------------------------------


def _print_table(title: str, rows: list[dict[str, Any]], as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps({**extra, "results": rows}, indent=2))
        return
    from rich.table import Table

    from lmassist.commands.common import console

    table = Table(title=title)
    keys = list(rows[0])
    for k in keys:
        table.add_column(k, justify="left" if k == "variant" else "right")
    for r in rows:
        table.add_row(*(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys))
    out = console()
    out.print(table)
    for k, v in extra.items():
        out.print(f"{k}: {v}")


@click.command("sentiment")
@model_option
@click.option("--data", type=click.Path(), help="Labelled JSONL ({text, label}); default: the shared dev set.")
@click.option("--limit", type=int, help="Use N rows spread evenly over the file.")
@click.option("--variants", default=DEFAULT_SENTIMENT, show_default=True,
              help=f"Comma list from: {', '.join(SENTIMENT_VARIANTS)}.")
@click.option("--json", "as_json", is_flag=True)
def bench_sentiment(model: str | None, data: str | None, limit: int | None, variants: str, as_json: bool) -> None:
    """Sentiment accuracy of prompt variants (calibration on/off, ensembles) vs the majority class."""
    from lmassist.commands.common import load_model

    rows = spread(load_jsonl(data or eval_file("sentiment-dev.jsonl")), limit, "label")
    llm = load_model(model)
    report = run_sentiment(llm, rows, [v.strip() for v in variants.split(",") if v.strip()])
    _print_table(f"sentiment on {len(rows)} rows, {llm.info.name}", report, as_json,
                 {"model": llm.info.name, "rows": len(rows)})


@click.command("qa")
@model_option
@click.option("--data", type=click.Path(), help="JSONL of {context, question, answers, answerable}; default: shared dev set.")
@click.option("--limit", type=int, help="Use N rows spread evenly over the file.")
@click.option("--variants", default="spans,generate-chat,generate-completion", show_default=True)
@click.option("--margins", default="0,2,4,99", show_default=True,
              help="Abstention margins (nats) to report for spans, each with and without the missing-words rule.")
@click.option("--pmis", default="1,2,3", show_default=True,
              help="PMI thresholds (nats) to report for the pmi rule (missing names or low PMI).")
@click.option("--overlaps", default="0.3,0.4,0.5", show_default=True,
              help="Question-overlap thresholds to report for the overlap rule (missing names or low overlap).")
@click.option("--elsewheres", default="1,2,3", show_default=True,
              help="Counts of question words used outside the answer's sentence to report for the default rule.")
@click.option("--length-bonus", type=float, default=None,
              help="Nats per token added to each span's log-likelihood when ranking (default: the task's).")
@click.option("--json", "as_json", is_flag=True)
def bench_qa(model: str | None, data: str | None, limit: int | None, variants: str, margins: str, pmis: str,
             overlaps: str, elsewheres: str, length_bonus: float | None, as_json: bool) -> None:
    """QA exact match / token F1 (answerable) and abstention rate (unanswerable): spans vs free generation."""
    from lmassist.commands.common import load_model

    rows = spread(load_jsonl(data or eval_file("qa-dev.jsonl")), limit, "answerable")
    llm = load_model(model)
    report = run_qa(llm, rows, [v.strip() for v in variants.split(",") if v.strip()],
                    [float(m) for m in margins.split(",") if m.strip()], [float(m) for m in pmis.split(",") if m.strip()],
                    [float(m) for m in overlaps.split(",") if m.strip()], length_bonus,
                    [int(k) for k in elsewheres.split(",") if k.strip()])
    _print_table(f"qa on {len(rows)} rows, {llm.info.name}", report, as_json, {"model": llm.info.name, "rows": len(rows)})


@click.command("eval-task")
@click.argument("task")
@click.argument("data", type=click.Path())
@model_option
@click.option("--limit", type=int, help="Evaluate the first N rows only.")
@click.option("--json", "as_json", is_flag=True)
def eval_task(task: str, data: str, model: str | None, limit: int | None, as_json: bool) -> None:
    """Print TASK's metrics on a labelled JSONL file, beside the simplest honest baseline.

    sentiment: accuracy, macro precision/recall/F1; qa: exact match and token F1 (SQuAD
    normalization); summarize: ROUGE-1/2/L (rouge-score); translate: chrF and BLEU (sacrebleu).
    """
    from lmassist.commands.common import load_model

    if task not in ("sentiment", "qa", "summarize", "translate"):
        raise LMAssistError(f"eval-task knows sentiment, qa, summarize and translate, not {task!r}")
    rows = load_jsonl(data, limit)
    target = next((k for k in rows[0] if k not in ("en", "source")), "fr") if task == "translate" else ""
    need = {"sentiment": ("text", "label"), "qa": ("context", "question", "answers", "answerable"),
            "summarize": ("document", "summary"), "translate": ("en", target)}[task]
    missing = [k for k in need if k not in rows[0]]
    if missing:
        raise LMAssistError(f"{data} rows need the fields {', '.join(need)}; missing {', '.join(missing)}")
    llm = load_model(model)
    if task == "sentiment":
        report = run_sentiment(llm, rows, ["default"])
    elif task == "qa":
        from lmassist.tasks.qa import MARGIN, OVERLAP_MIN

        report = run_qa(llm, rows, ["spans"], [MARGIN], overlaps=[OVERLAP_MIN, 0.4, 0.5], elsewheres=[1, 2, 3])
    elif task == "summarize":
        report = run_summaries(llm, rows, ["medium"], ("extractive", "abstractive"))
    else:
        report = run_translation(llm, rows, target)
    _print_table(f"{task} on {len(rows)} rows, {llm.info.name}", report, as_json, {"model": llm.info.name, "rows": len(rows)})


@click.command("summarize")
@model_option
@click.option("--data", type=click.Path(), help="JSONL of {document, summary, source}; default: shared dev set.")
@click.option("--source", "only", type=click.Choice(["all", "cnn_dailymail", "bbc"]), default="cnn_dailymail", show_default=True)
@click.option("--limit", type=int, default=15, show_default=True)
@click.option("--lengths", default="medium", show_default=True, help="Comma list of summary lengths to run.")
@click.option("--modes", default=",".join(SUMMARY_MODES), show_default=True,
              help=f"Comma list of summary modes from: {', '.join(SUMMARY_MODES)}.")
@click.option("--memory/--no-memory", default=True, help="Also print peak memory of chunking a 10 KB vs a 10 MB file.")
@click.option("--json", "as_json", is_flag=True)
def bench_summarize(model: str | None, data: str | None, only: str, limit: int, lengths: str, modes: str,
                    memory: bool, as_json: bool) -> None:
    """ROUGE-1/2/L of extractive and map-reduce summaries vs the first three sentences; peak memory 10 KB vs 10 MB."""
    from lmassist.commands.common import load_model

    rows = load_jsonl(data or eval_file("summarization-dev.jsonl"))
    rows = [r for r in rows if only == "all" or r.get("source", "").lower().startswith(only.split("_")[0])][:limit]
    if not rows:
        raise LMAssistError(f"no rows with source {only!r}")
    extra: dict[str, Any] = {}
    if memory:
        extra.update(_memory_figures(model))
    llm = load_model(model)
    report = run_summaries(llm, rows, [x.strip() for x in lengths.split(",") if x.strip()],
                           [x.strip() for x in modes.split(",") if x.strip()])
    _print_table(f"summaries of {len(rows)} {only} articles, {llm.info.name}", report, as_json,
                 {"model": llm.info.name, "rows": len(rows), **extra})


def _memory_figures(model: str | None) -> dict[str, Any]:
    """Peak RSS of reading and chunking a 10 KB and a 10 MB file (``summarize --plan``), in fresh processes."""
    import tempfile

    from lmassist.bench.llamacpp import peak_rss_mb

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
@click.option("--limit", type=int, default=100, show_default=True, help="First N pairs of the dev file.")
@click.option("--json", "as_json", is_flag=True)
def bench_translate(model: str | None, target: str, limit: int, as_json: bool) -> None:
    """chrF and BLEU (sacrebleu) of sentence translation vs copying the source."""
    from lmassist.commands.common import load_model

    rows = load_jsonl(eval_file(f"translation-en-{target}-dev.jsonl"), limit)
    llm = load_model(model)
    report = run_translation(llm, rows, target)
    _print_table(f"en->{target} on {len(rows)} pairs, {llm.info.name}", report, as_json, {"model": llm.info.name, "rows": len(rows)})


def register_bench_commands(bench: click.Group) -> None:
    for cmd in (bench_sentiment, bench_qa, bench_summarize, bench_translate):
        if cmd.name not in bench.commands:
            bench.add_command(cmd)


def register_eval_command(cli: click.Group) -> None:
    if "eval-task" not in cli.commands:
        cli.add_command(eval_task)
