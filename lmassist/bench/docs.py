"""Figures for the document index: retrieval on the folder-QA dev set against qa's in-memory
passages, and indexing speed, memory, update and query time on a generated folder.

A benchmark prints figures and asserts nothing; the machines are shared, so it says how busy the
machine was. Run ``lmassist bench docs --help``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import each, machine, median
from lmassist.bench.metrics import halves, mean, qa_scores
from lmassist.commands.common import load_model, model_option
from lmassist.docindex.index import MAX_TOKENS, WEIGHTS, DocIndex
from lmassist.docindex.passages import approx_tokens
from lmassist.generation import GenerationOptions, Message
from lmassist.system import rusage_to_mb
from lmassist.tasks.chunking import chunk_text, paragraphs
from lmassist.tasks.docs_answer import TOP_K, DocsAnswer, decide, docs_turn, read
from lmassist.tasks.qa_answerer import (
    CALIBRATION,
    HEADINGS,
    LOCAL,
    READING,
    SENTENCE_WEIGHT,
    QuestionAnswerer,
)
from lmassist.tasks.qa_context import Passage, retrieve

DEV = "../shared/data/eval/folder-qa-dev"
SHAKESPEARE = "../shared/data/tinyshakespeare.txt"
GRID_WEIGHTS = ((1.0, 1.0, 1.0), (0.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 5.0, 1.0), (3.0, 2.0, 1.0), (0.0, 0.0, 1.0))
GRID_TOKENS = (100, 150, 200, 300)

Ranker = Callable[[str, int], list[str]]  # question, k -> the files of the top-k passages, best first


# -- retrieval quality ---------------------------------------------------------------------------


def load_questions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def hits(rank: Ranker, questions: Sequence[dict]) -> tuple[float, float]:
    """hit@1 and hit@3: the question's file is the first passage's / among the first three's."""
    at1 = at3 = 0
    for q in questions:
        files = rank(q["question"], 3)
        at1 += bool(files) and files[0] == q["doc"]
        at3 += q["doc"] in files
    n = max(1, len(questions))
    return at1 / n, at3 / n


def fts_ranker(docs: Path, workdir: Path, max_tokens: int, weights: Sequence[float]) -> tuple[Ranker, DocIndex]:
    index = DocIndex(workdir / f"dev-{max_tokens}.db", max_tokens=max_tokens, weights=weights)
    if not index.list():
        index.add("dev", docs)

    def rank(question: str, k: int) -> list[str]:
        return [h.path for h in index.search("dev", question, k)]

    return rank, index


def qa_passages_ranker(docs: Path) -> Ranker:
    """What ``qa --context`` does over many files: ~160-token passages ranked in memory
    (:mod:`lmassist.docindex.ranking`; rank-bm25's BM25Okapi until issue #16)."""
    pieces: list[Passage] = []
    for path in sorted(docs.iterdir()):
        text = path.read_text(encoding="utf-8")
        for chunk in chunk_text(paragraphs(text.splitlines(keepends=True)), approx_tokens, 160):
            pieces.append(Passage(path.name, chunk))

    def rank(question: str, k: int) -> list[str]:
        fresh = [Passage(p.source, p.text) for p in pieces]
        return [p.source for p in retrieve(question, fresh, k)]

    return rank


def retrieval(dev: Path, out: Callable[[str], None]) -> dict[str, float]:
    questions = [q for q in load_questions(dev / "questions.jsonl") if q.get("answerable", True)]
    tune, held = questions[0::2], questions[1::2]
    out(f"retrieval: {len(questions)} answerable questions, tuned on the {len(tune)} even rows, "
        f"{len(held)} odd rows held out; {len(list((dev / 'docs').iterdir()))} notes in {dev / 'docs'}")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        grid = []
        indexes = []
        for max_tokens in GRID_TOKENS:
            for weights in GRID_WEIGHTS:
                rank, index = fts_ranker(dev / "docs", Path(tmp), max_tokens, weights)
                indexes.append(index)
                grid.append((hits(rank, tune), max_tokens, weights, rank))
        best = max(grid, key=lambda g: (g[0][1], g[0][0], g[1] == MAX_TOKENS))
        default = next(g for g in grid if g[1] == MAX_TOKENS and g[2] == WEIGHTS)
        for (t1, t3), max_tokens, weights, _ in grid:
            out(f"  fts5 max_tokens={max_tokens:<3} weights(path,heading,body)={weights}: tune hit@1 {t1:.3f} "
                f"hit@3 {t3:.3f}")
        baseline = qa_passages_ranker(dev / "docs")
        rows = [("qa passages (in-memory fts5)", baseline), (f"fts5 default {default[1]} {default[2]}", default[3]),
                (f"fts5 best-on-tune {best[1]} {best[2]}", best[3])]
        for label, rank in rows:
            (t1, t3), (h1, h3) = hits(rank, tune), hits(rank, held)
            out(f"  {label:<42} tune hit@1 {t1:.3f} hit@3 {t3:.3f} | held-out hit@1 {h1:.3f} hit@3 {h3:.3f}")
            key = label.split()[0]
            figures.update({f"{key} held hit@1": h1, f"{key} held hit@3": h3})
        for index in indexes:
            index.close()
    return figures


# -- answers over a folder (eval-task docs-qa) ----------------------------------------------------


# (sentence weight, headings, local, calibration) scored beside the default by ``eval-task docs-qa --settings``
SETTINGS = [(w, h, loc, c) for c in sorted({0.0, 0.5, 0.75, CALIBRATION}) for w in (0.0, 2.0, 4.0)
            for h, loc in ((False, False), (True, False), (True, True))]


def run_docs_qa(model: Any, docs: Path, rows: list[dict[str, Any]],
                settings: Sequence[tuple[float, bool, bool, float]] = (), reading: str = READING) -> list[dict[str, Any]]:
    """Index ``docs`` into a temporary index, answer every question as :func:`answer_from_docs`
    does, and score each half: retrieval hit@1/hit@3 (the question's file among the passages read),
    whether the first citation is the right file, token F1 on answerable questions (an abstention
    scores 0), and how often it abstains on unanswerable ones and, wrongly, on answerable ones.
    Each of ``settings`` (sentence weight, headings, local, calibration; see
    :mod:`lmassist.tasks.qa_answerer`) is scored
    from the same reading, after the default. ``reading``: what the model reads (see READING there)."""
    qa = QuestionAnswerer(model, method="spans", reading=reading)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, DocIndex(Path(tmp) / "eval.db") as index:
        index.add("eval", docs)
        readings = [read(qa, r["question"], index.search("eval", r["question"], TOP_K))
                    for r in each(rows, "docs-qa", "questions")]
    took = time.perf_counter() - start
    report = []
    default = (SENTENCE_WEIGHT, HEADINGS, LOCAL, CALIBRATION)
    for setting in [default, *(s for s in settings if s != default)]:
        rule = QuestionAnswerer(model, method="spans", sentence_weight=setting[0], headings=setting[1],
                                local=setting[2], calibration=setting[3])
        answers = [decide(rule, r["question"], reading) for r, reading in zip(rows, readings, strict=True)]
        label = (f"calibration {setting[3]:g}, prior {setting[0]:g}" + (", headings" if setting[1] else "")
                 + (", local" if setting[2] else "")
                 + (" (default)" if setting == default and reading == READING else ""))
        for half in ("all", "tune", "held-out"):
            keep = [(r, a) for r, a, h in zip(rows, answers, halves(rows), strict=True) if half in ("all", h)]
            report.append({"setting": label, **_docs_qa_row(half, keep, took)})
    return report


def _docs_qa_row(label: str, pairs: list[tuple[dict[str, Any], DocsAnswer]], seconds: float) -> dict[str, Any]:
    answerable = [(r, a) for r, a in pairs if r["answerable"]]
    unanswerable = [a for r, a in pairs if not r["answerable"]]
    files = [[c.path for c in a.passages] for _, a in answerable]
    answered = [(r, a) for r, a in answerable if not a.abstained]
    return {
        "half": label,
        "hit@1": mean([float(f[:1] == [r["doc"]]) for (r, _), f in zip(answerable, files, strict=True)]),
        "hit@3": mean([float(r["doc"] in f[:3]) for (r, _), f in zip(answerable, files, strict=True)]),
        "cited_right": mean([float(a.citations[0].path == r["doc"]) for r, a in answered]),
        "f1": mean([0.0 if a.abstained else qa_scores(a.text, r["answers"])[1] for r, a in answerable]),
        "exact_match": mean([0.0 if a.abstained else qa_scores(a.text, r["answers"])[0] for r, a in answerable]),
        "abstain_unanswerable": mean([float(a.abstained) for a in unanswerable]),
        "abstain_answerable": mean([float(a.abstained) for _, a in answerable]),
        "answerable_n": len(answerable),
        "unanswerable_n": len(unanswerable),
        "seconds": seconds,
    }


# -- time to first token of ask --docs ------------------------------------------------------------


def _first_token(model: Any, messages: list[Message]) -> float:
    """Seconds until a one-token reply to ``messages`` is out."""
    start = time.perf_counter()
    for _ in model.chat(messages, GenerationOptions(max_new_tokens=1, temperature=0.0)):
        pass
    return time.perf_counter() - start


def first_token_ratio(model: Any, dev: Path, questions: Sequence[str], out: Callable[[str], None]) -> dict[str, float]:
    """Time to first token of ``ask --docs`` (retrieval, the prompt, the reply's first token) against
    the same question with the same passages pasted into the message by hand, side by side, the
    order alternating from question to question so neither always runs on a warmer cache."""
    docs_s: list[float] = []
    pasted_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, DocIndex(Path(tmp) / "ttft.db") as index:
        index.add("dev", dev / "docs")
        _first_token(model, [Message("user", "Hello")])  # the first evaluation pays for warming up
        for i, question in enumerate(questions):
            turn = docs_turn(model, "dev", question, index=index)
            if turn.abstain:
                continue
            pasted = [Message("user", "\n\n".join(c.text for c in turn.citations) + f"\n\n{question}")]
            for kind in ("docs", "pasted") if i % 2 == 0 else ("pasted", "docs"):
                if kind == "pasted":
                    pasted_s.append(_first_token(model, pasted))
                    continue
                start = time.perf_counter()
                messages = docs_turn(model, "dev", question, index=index).messages
                docs_s.append(time.perf_counter() - start + _first_token(model, messages))
    figures = {"ask --docs first token median s": median(docs_s), "pasted first token median s": median(pasted_s)}
    figures["ratio (target <= 1.5)"] = figures["ask --docs first token median s"] / figures["pasted first token median s"]
    out(f"time to first token, {len(docs_s)} questions, {model.info.name}:")
    for key, value in figures.items():
        out(f"  {key:>34}: {value:.3f}")
    return figures


# -- scale ---------------------------------------------------------------------------------------


def generate(root: Path, files: int, megabytes: float, sources: Sequence[Path]) -> int:
    """``files`` notes, ``megabytes`` in all, cut from real text (Markdown headings, paragraphs,
    plain text), with old mtimes as a folder at rest has. Returns the bytes written."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    per_file = int(megabytes * 2**20 / files)
    total = 0
    for i in range(files):
        start = (i * 7919 * 31) % max(1, len(text) - per_file)
        body = text[start:start + per_file]
        if i % 2 == 0:
            paras = body.split("\n\n")
            body = "\n\n".join(f"## Part {j}\n\n{p}" if j % 4 == 0 else p for j, p in enumerate(paras))
            name = f"note-{i}.md"
        else:
            name = f"note-{i}.txt"
        path = root / f"d{i // 200}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"# Note {i}\n\n{body}\n".encode()
        path.write_bytes(data)
        os.utime(path, (1_600_000_000, 1_600_000_000))
        total += len(data)
    return total


# The child reports its own peak (VmHWM, which exec resets): the rusage of a child also counts the
# parent's pages it shared between fork and exec, which made the parent's size look like the child's.
_CHILD = """
import json, resource, sys, time
import click

from lmassist.bench.common import machine, median
from lmassist.docindex.index import DocIndex
t = time.perf_counter()
s = DocIndex(sys.argv[1]).add("big", sys.argv[2])
seconds = time.perf_counter() - t
try:
    peak = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = None
print(json.dumps({"seconds": seconds, "files": s.added, "chunks": s.chunks, "peak": peak}))
"""


def scale(root: Path, db: Path, questions: list[str], out: Callable[[str], None]) -> dict[str, float]:
    """Index ``root`` in a fresh process (for its peak memory), then time updates and queries."""
    load = os.getloadavg()[0]
    child = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(root)], capture_output=True, text=True,
                           check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {"index seconds": result["seconds"], "index cpu seconds": usage.ru_utime + usage.ru_stime,
               "index peak MB": result["peak"] or rusage_to_mb(usage.ru_maxrss), "files": result["files"],
               "passages": result["chunks"], "db MB": db.stat().st_size / 2**20, "load avg": load}
    with DocIndex(db) as index:
        t = time.perf_counter()
        unchanged = index.update("big")
        figures["update nothing changed s"] = time.perf_counter() - t
        victim = next(root.rglob("*.md"))
        victim.write_text(victim.read_text(encoding="utf-8") + "\nA line added by the benchmark.\n")
        t = time.perf_counter()
        one = index.update("big")
        figures["update one file s"] = time.perf_counter() - t
        assert unchanged.read == 0 and one.updated == 1, (unchanged.line(), one.line())
        times = []
        for q in questions:
            t = time.perf_counter()
            index.search("big", q, 3)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    figures["query median ms"] = median(times)
    figures["query p95 ms"] = times[int(len(times) * 0.95) - 1]
    return figures


def run(dev: Path, text: Path, files: int, mb: float, skip_retrieval: bool = False, skip_scale: bool = False,
        out: Callable[[str], None] = click.echo, model: Any = None, ttft: int = 0) -> None:
    """Print the retrieval figures on ``dev``, the first-token figures (``ttft`` questions on
    ``model``) and the scale figures on a folder generated from ``text``."""
    facts = machine()
    out(f"python {facts['python']}, {facts['cpus']} cpus, load average {os.getloadavg()[0]:.2f} "
        "(a shared machine: figures are noisy)")
    if not skip_retrieval:
        retrieval(dev, out)
    if model is not None and ttft > 0:
        rows = [q["question"] for q in load_questions(dev / "questions.jsonl") if q.get("answerable", True)]
        first_token_ratio(model, dev, rows[:: max(1, len(rows) // ttft)][:ttft], out)
    if skip_scale:
        return
    questions = [q["question"] for q in load_questions(dev / "questions.jsonl")]
    tmp = Path(tempfile.mkdtemp(prefix="lmassist-bench-docs-"))
    try:
        sources = [text, *sorted((dev / "docs").glob("*.md"))]
        written = generate(tmp / "folder", files, mb, sources)
        out(f"scale: {files} files, {written / 2**20:.1f} MB generated from {text.name} and the dev notes")
        figures = scale(tmp / "folder", tmp / "docs.db", questions, out)
        figures["MB/s"] = written / 2**20 / figures["index seconds"]
        figures["s per 100 MB (extrapolated)"] = 100 / figures["MB/s"]
        figures["cpu s per 100 MB (extrapolated)"] = figures["index cpu seconds"] * 100 / (written / 2**20)
        for key, value in figures.items():
            out(f"  {key:>28}: {value:.3f}" if isinstance(value, float) else f"  {key:>28}: {value}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.command("docs")
@click.option("--dev", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEV,
              show_default=True, help="The folder-QA dev set (docs/ and questions.jsonl), from the working directory.")
@click.option("--text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=SHAKESPEARE,
              show_default=True, help="Real text the generated folder is made from.")
@click.option("--files", type=click.IntRange(1), default=2000, show_default=True, help="Files in the generated folder.")
@click.option("--mb", type=click.FloatRange(0.01), default=20.0, show_default=True, help="Its size in MB.")
@click.option("--skip-retrieval", is_flag=True, help="Only the indexing figures.")
@click.option("--skip-scale", is_flag=True, help="Only the retrieval and first-token figures.")
@click.option("--ttft", type=click.IntRange(0), default=8, show_default=True,
              help="Questions to time ask --docs's first token on, against the passages pasted (0: skip).")
@model_option
def bench_docs(dev: Path, text: Path, files: int, mb: float, skip_retrieval: bool, skip_scale: bool, ttft: int,
               model: str | None) -> None:
    """Folder index: retrieval hit@1/hit@3 vs qa's in-memory passages (two halves), time to first token of
    ask --docs vs pasted passages, indexing speed, memory, update, query time.

    \b
    Examples:
      lmassist bench docs                       # 2,000 files, 20 MB
      lmassist bench docs --files 10000 --mb 100 --ttft 0
    """
    llm = load_model(model) if ttft else None
    run(dev, text, files, mb, skip_retrieval, skip_scale, model=llm, ttft=ttft)


COMMANDS = (bench_docs,)
