"""Sentiment: a label (positive / negative, and neutral when asked) and a confidence, per text or line.

The task reads texts (files, stdin, ``--text``; whole or ``--per-line``) and writes labels as text,
Markdown or ``--json``; the labelling is :class:`~lmassist.tasks.sentiment_classifier.SentimentClassifier`'s:
with a backend that has ``score``, by the likelihood of the label words after few-shot prompts
(a zero-shot chat prompt from a 135M model says "positive" to everything); without it, by
generating a word and parsing it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lmassist.config import paths, warn
from lmassist.errors import describe
from lmassist.generation import CancelToken, LMAssistError, Model
from lmassist.tasks.base import FILES, FileTask, Param, Progress, TaskInput, TaskResult
from lmassist.tasks.sentiment_classifier import (
    BATCH_MIN,
    CALIBRATIONS,
    DEFAULT_CALIBRATION,
    DEFAULT_DIRECTION,
    SentimentClassifier,
)
from lmassist.tasks.sentiment_prompts import DIRECTIONS

# Texts labelled together when streaming records (sentiment --per-line over files): large enough
# that scoring batches fill a GPU, small enough that the first records come out within seconds.
STREAM_BATCH = 64

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "model", "method", "calibration", "labels", "results"],
    "properties": {
        "task": {"const": "sentiment"},
        "model": {"type": "string", "description": "the model's full name, backend:model"},
        "method": {"enum": ["score", "generate"], "description": "label likelihood, or generate-and-parse"},
        "calibration": {"enum": list(CALIBRATIONS),
                        "description": "how label scores were corrected (none when generating, and "
                        "for batch with fewer than 8 texts)"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "forms": {"type": "array", "items": {"type": "string"},
                  "description": "prompt forms scored (channel: P(text | label)); empty when generating"},
        "warnings": {"type": "array", "items": {"type": "string"},
                     "description": "what was not read (texts longer than the model's context), also on stderr"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "line", "text", "label", "confidence", "scores"],
                "properties": {
                    "source": {"type": "string", "description": "file path, 'stdin' or 'text'"},
                    "line": {"type": ["integer", "null"], "description": "1-based line with --per-line, else null"},
                    "text": {"type": "string"},
                    "label": {"enum": ["positive", "negative", "neutral", "unknown"]},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "scores": {"type": "object", "additionalProperties": {"type": "number"},
                               "description": "probability per label (vote share when generating)"},
                    "truncated": {"type": "boolean",
                                  "description": "true when the text did not fit the model's context and "
                                  "only its head (chars_read characters) was labelled"},
                    "chars_read": {"type": "integer", "description": "characters of text that were labelled"},
                },
            },
        },
    },
}


class SentimentTask(FileTask):
    name = "sentiment"
    summary = "Label text as positive or negative (or neutral), with a confidence, per text or per line."
    description = (
        "Label the sentiment of text: positive or negative (add --neutral for a third label), with a "
        "confidence. Reads FILEs, stdin ('-' or nothing piped) or --text. With a model that can score, "
        "the label is chosen by the likelihood of the label words after few-shot prompts; otherwise the "
        "model generates a word that is parsed."
    )
    params = (
        FILES,
        Param("text", "option", help="Classify this text instead of reading files.", flags=("-t", "--text"), metavar="T"),
        Param("per_line", "flag", help="Classify each non-empty line on its own.", flags=("--per-line",)),
        Param("neutral", "flag", help="Allow a third label, neutral.", flags=("--neutral",)),
        Param("calibration", "option", choices=CALIBRATIONS, default=DEFAULT_CALIBRATION,
              help="How label scores are corrected. held-out: threshold from 40 labelled reviews "
              "written for the purpose (measured 0.853 vs 0.843 for none on the dev set; cached per "
              "model); content-free: subtract the scores of empty inputs (0.797); batch: centre on "
              "the batch median, assuming balanced labels (0.850); none."),
        Param("direction", "option", choices=tuple(DIRECTIONS), default=DEFAULT_DIRECTION,
              help="With scoring: direct, P(label | text); channel, P(text | label); both, averaged."),
        Param("method", "option", choices=("auto", "score", "generate"), default="auto",
              help="score: label likelihood (needs a backend with scoring); generate: generate and parse."),
    )
    json_schema = RESULT_SCHEMA
    examples = (
        "lmassist sentiment reviews.txt --per-line --json",
        'lmassist sentiment --text "what a wonderful film"',
        "cat review.txt | lmassist sentiment",
    )

    def check(self, values: dict[str, Any]) -> None:
        if values.get("text") is not None and values.get("files"):
            raise LMAssistError("give either --text or files, not both")
        if values.get("text") is not None and not values["text"].strip():
            raise LMAssistError("--text is empty: nothing to classify")

    def needs_files(self, values: dict[str, Any]) -> bool:
        return values.get("text") is None and not values.get("files")

    @property
    def slash_usage(self) -> str:
        return "/sentiment TEXT | " + super().slash_usage.removeprefix("/sentiment ")

    def parse_slash(self, argline: str) -> dict[str, Any]:
        """In the chat, ``/sentiment what a film`` classifies the words typed; an existing path, or
        an argument line that starts with an option, parses as files and options as on the CLI."""
        words = argline.strip()
        first = words.split(maxsplit=1)[0] if words else ""
        if words and not first.startswith("-") and not Path(first).expanduser().exists():
            return super().parse_slash("--text " + shlex.quote(words))
        return super().parse_slash(argline)

    def inputs(self, values: dict[str, Any]) -> list[TaskInput]:
        if values.get("text") is not None:
            return [TaskInput("text", values["text"])]
        return super().inputs(values)

    def items(self, values: dict[str, Any]) -> list[tuple[str, int | None, str]]:
        """(source, line or None, text) for each text to label: whole inputs, or their lines."""
        items: list[tuple[str, int | None, str]] = []
        for inp in self.inputs(values):
            if values.get("per_line"):
                items += [(inp.source, i, line.strip()) for i, line in enumerate(inp.text.splitlines(), 1) if line.strip()]
            else:
                items.append((inp.source, None, inp.text.strip()))
        return items

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        items = self.items(values)
        clf = _classifier(model, values)
        labelled = clf.classify_many([text for _, _, text in items], progress, cancel)
        results = [{"source": src, "line": line, "text": text, **lab}
                   for (src, line, text), lab in zip(items, labelled, strict=False)]
        warnings = _truncation_warnings(results, clf.room)
        calibration = "none" if clf.calibration == "batch" and len(results) < BATCH_MIN else clf.calibration
        markdown = _as_markdown(results) + "".join(f"\n\n*{w}*" for w in warnings[:5])
        return self.result(model, _as_text(results), markdown, method=clf.method, calibration=calibration,
                           labels=list(clf.labels), results=results, forms=[f.name for f in clf.forms],
                           warnings=warnings)

    def records(self, model: Model, values: dict[str, Any], inputs: Iterable[TaskInput],
                progress: Progress | None = None, cancel: CancelToken | None = None) -> Iterator[dict[str, Any]]:
        """One record per text (per line with ``--per-line``), in input order, as soon as its batch
        of :data:`STREAM_BATCH` texts is labelled: batched scoring underneath, a stream on top.

        Inputs are pulled lazily and batches cross input boundaries, so many small files batch as
        well as one large one. A batch the model fails on is one error record per text in it.
        """
        self.check(values)
        clf = _classifier(model, values)
        pending: list[tuple[str, int | None, str]] = []
        done = 0
        for item in _stream_items(inputs, bool(values.get("per_line"))):
            pending.append(item)
            if len(pending) < STREAM_BATCH:
                continue
            yield from _label_batch(clf, pending, cancel)
            done, pending = done + len(pending), []
            if cancel is not None and cancel.cancelled:
                return
            if progress:
                progress(done, None)
        yield from _label_batch(clf, pending, cancel)


def _classifier(model: Model, values: dict[str, Any]) -> SentimentClassifier:
    direction = values.get("direction") or DEFAULT_DIRECTION
    if direction not in DIRECTIONS:
        raise LMAssistError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
    return SentimentClassifier(
        model, forms=DIRECTIONS[direction], calibration=values.get("calibration") or DEFAULT_CALIBRATION,
        neutral=bool(values.get("neutral")), method=values.get("method") or "auto",
        cache=paths().cache / "sentiment-calibration.json", concurrency=int(values.get("concurrency") or 1),
    )


def _stream_items(inputs: Iterable[TaskInput], per_line: bool) -> Iterator[tuple[str, int | None, str]]:
    """(source, line or None, text) for each text to label, pulling one input at a time."""
    for inp in inputs:
        if per_line:
            for i, line in enumerate(inp.text.splitlines(), 1):
                if line.strip():
                    yield inp.source, i, line.strip()
        elif inp.text.strip():
            yield inp.source, None, inp.text.strip()


def _label_batch(clf: SentimentClassifier, items: list[tuple[str, int | None, str]],
                 cancel: CancelToken | None) -> Iterator[dict[str, Any]]:
    """The records of one batch; nothing when it was cancelled (a partial batch is not a result)."""
    if not items:
        return
    try:
        labelled = clf.classify_many([text for _, _, text in items], None, cancel)
    except LMAssistError as e:
        for src, line, _ in items:
            yield {"source": src, "line": line, "error": describe(e)}
        return
    if len(labelled) < len(items):
        return
    records = [{"source": src, "line": line, "text": text, **lab}
               for (src, line, text), lab in zip(items, labelled, strict=True)]
    _truncation_warnings(records, clf.room)
    yield from records


def _truncation_warnings(results: list[dict[str, Any]], room: int) -> list[str]:
    """One line per text cut to fit the model's context, the first five also on stderr."""
    warnings = []
    for r in results:
        if r.get("truncated"):
            where = f"{r['source']}:{r['line']}" if r["line"] is not None else r["source"]
            warnings.append(
                f"{where}: only the first {r['chars_read']} of {len(r['text'])} characters fit the model's "
                f"context ({room} tokens) and were labelled; the rest was not read "
                "(--per-line labels each line)")
    for line in warnings[:5]:
        warn(line)
    if len(warnings) > 5:
        warn(f"{len(warnings) - 5} more texts were cut the same way (see 'truncated' in --json)")
    return warnings


def _as_text(results: list[dict[str, Any]]) -> str:
    if len(results) == 1 and results[0]["line"] is None:
        r = results[0]
        return f"{r['label']}\t{r['confidence']:.2f}"
    lines = []
    for r in results:
        where = f"{r['source']}:{r['line']}" if r["line"] is not None else r["source"]
        snippet = r["text"] if len(r["text"]) <= 60 else r["text"][:57] + "..."
        lines.append(f"{r['label']}\t{r['confidence']:.2f}\t{where}\t{snippet}")
    return "\n".join(lines)


def _as_markdown(results: list[dict[str, Any]]) -> str:
    rows = ["| label | confidence | text |", "|---|---|---|"]
    for r in results:
        snippet = r["text"] if len(r["text"]) <= 80 else r["text"][:77] + "..."
        cell = snippet.replace("|", "\\|")
        rows.append(f"| **{r['label']}** | {r['confidence']:.2f} | {cell} |")
    return "\n".join(rows)
