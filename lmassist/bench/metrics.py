"""The scores the task benchmarks print: classification, SQuAD, ROUGE, chrF/BLEU, and the JSONL reader.

Written out here (a few lines each) rather than importing sklearn for them; ROUGE and chrF/BLEU use
the reference packages, which are optional (``pip install lmassist[bench]``).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

from lmassist.generation import LMAssistError
from lmassist.tasks.chunking import split_sentences


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


def qa_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """QA rows; a row naming a ``doc`` instead of giving a ``context`` (a folder dev set such as
    ``tests/data/notes-qa``) gets that file's text, read from ``docs/`` beside the questions."""
    rows = load_jsonl(path, limit)
    folder = Path(path).parent / "docs"
    for r in rows:
        if "context" not in r and "doc" in r:
            try:
                r["context"] = (folder / r["doc"]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise LMAssistError(f"{path}: cannot read the note {r['doc']} ({e})") from None
    return rows


def halves(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's half: its ``split`` field ("tune" or "held-out") when it has one, else the even
    rows "tune" and the odd ones "held-out" (what ``bench docs`` holds out on the folder dev set)."""
    return [str(r.get("split") or ("tune" if i % 2 == 0 else "held-out")) for i, r in enumerate(rows)]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def spread(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` rows taken evenly across the file, so that every class of a sorted file stays represented."""
    if not limit or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def classification_metrics(gold: list[str], pred: list[str]) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1."""
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


def lead_sentences(text: str, n: int = 3) -> str:
    """The first ``n`` sentences: the baseline every summary is scored beside."""
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
