"""Summarization, map-reduce over token-sized chunks so any input length fits any context.

The input's prose blocks, as the CommonMark parser finds them (code and front matter are not summary
material), are packed into chunks by the model's own token count, as a stream (paragraphs kept whole
where they fit); each chunk is summarized (map), and the partial summaries are combined (reduce),
recursively if they are themselves too long. A job's memo keeps each finished step, so a stopped
run resumes; :func:`overview` summarizes many files' summaries the same way.

Two modes. ``abstractive``: chat models get a chat instruction, base models the classic "TL;DR:"
cue with a stop string. ``extractive``: the summary is sentences copied from the input (short
parenthetical and dash-delimited asides cut), chosen by a score mixing the lead bias (news and
reports put the gist first) and centrality (TF-IDF cosine to the whole chunk); optionally also the
model's likelihood of each sentence as the summary after the chunk and a "TL;DR:" cue (per token,
relative to the same sentence with no document: pointwise mutual information), off by default
because it measured no gain. A 135M model's free summaries score below the first three sentences
and extractive selection does not, so ``auto`` (the default) is extractive. ``lmassist bench
summarize`` prints every mode beside the lead baseline.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Message, Model
from lmassist.tasks import prompts
from lmassist.tasks.base import FILES, FileTask, Param, Progress, TaskInput, TaskResult
from lmassist.tasks.chunk_memo import Memo, chunk_key, memoized
from lmassist.tasks.chunking import chunk_text, document_format, fit_head, prose_pieces, split_sentences

LENGTHS: dict[str, tuple[str, int]] = {
    "short": ("one or two sentences", 64),
    "medium": ("three sentences", 128),
    "long": ("one paragraph of five to eight sentences", 256),
}

MODES = ("auto", "extractive", "abstractive")
# Sentences an extractive summary keeps, per --length.
EXTRACT_SENTENCES = {"short": 2, "medium": 3, "long": 6}
# Weights of the extractive score (lead bias 1/sqrt(1+i), centrality, model PMI z-score), set with
# `lmassist bench summarize`; the model's PMI did not help, so it is off (bench mode extractive+lm).
W_LEAD, W_CENTRAL, W_MODEL = 1.0, 0.75, 0.0
# Chunk size of extractive mode when the model scores nothing (no context window to fit).
EXTRACT_CHUNK_TOKENS = 8192
# How many leading sentences of a chunk are candidates (news puts the gist first; bounds the cost).
CANDIDATES = 15

# Page furniture that is never summary material ("Scroll down for video", bylines, datelines).
_JUNK = re.compile(r"scroll down for|click here|read more:|follow @|published:|updated:|last updated|"
                   r"^by \.|daily mail reporter|all rights reserved|^share this", re.I)
_DATELINE = re.compile(r"^(?:[A-Z][\w .,'-]{0,40})?\((?:CNN|AP|Reuters)\)\s*(?:--?\s*)?")
_TERM = re.compile(r"[a-z0-9]+")
# Markdown furniture: headings are titles, not sentences; list markers and quote marks are not words.
_HEADING = re.compile(r"^ {0,3}#{1,6}\s.*$", re.M)
_LINE_MARK = re.compile(r"^\s*(?:[-*+>]|\d{1,3}[.)])\s+", re.M)
_STOP = frozenset("""a an the and or but of in on at to for from by with as is are was were be been it its this
that he she his her they their them we you i has have had not said says will would can could who which""".split())


_ASIDE = re.compile(r"\s*\([^()]{0,80}\)|\s+[-–—]\s[^-–—]{0,120}?\s[-–—](?=\s)")


def compress(sentence: str) -> str:
    """Drop short parentheticals and dash-delimited asides: words that rarely make a summary."""
    out = _ASIDE.sub("", sentence).strip()
    return out if len(out.split()) >= 4 else sentence


# A "sentence" longer than this is text without full stops (a log, a 1 MB line): a summary keeps its
# head, or the summary would be as long as the input and the reduce step would never shrink it.
MAX_SENTENCE_WORDS = 60


def _bounded(sentence: str) -> str:
    words = sentence.split(maxsplit=MAX_SENTENCE_WORDS)
    return sentence if len(words) <= MAX_SENTENCE_WORDS else " ".join(words[:MAX_SENTENCE_WORDS]) + " …"


def _terms(sentence: str) -> list[str]:
    return [w for w in _TERM.findall(sentence.lower()) if w not in _STOP]


def clean_sentences(text: str) -> list[str]:
    """Sentences of ``text`` worth extracting: datelines stripped, page furniture, scraps and repeats dropped."""
    out: dict[str, None] = {}
    text = _LINE_MARK.sub("", _HEADING.sub("\n", text))
    for s in split_sentences(" ".join(text.split())):
        s = _DATELINE.sub("", s).strip()
        if len(s.split()) >= 4 and not _JUNK.search(s):
            out.setdefault(s)
    return list(out)


def centrality(sentences: list[str]) -> list[float]:
    """TF-IDF cosine of each sentence to the whole text (sentences as documents)."""
    tfs = [Counter(_terms(s)) for s in sentences]
    df: Counter[str] = Counter()
    for tf in tfs:
        df.update(set(tf))
    n = len(sentences)
    idf = {w: math.log(1 + n / c) for w, c in df.items()}
    whole: Counter[str] = Counter()
    for tf in tfs:
        whole.update(tf)
    dv = {w: c * idf[w] for w, c in whole.items()}
    dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
    out = []
    for tf in tfs:
        v = {w: c * idf[w] for w, c in tf.items()}
        nv = math.sqrt(sum(x * x for x in v.values())) or 1.0
        out.append(sum(x * dv[w] for w, x in v.items()) / (nv * dn))
    return out


def _zscores(xs: list[float]) -> list[float]:
    if len(xs) < 2:
        return [0.0] * len(xs)
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs)) or 1.0
    return [(x - mean) / sd for x in xs]


class Summarizer:
    """Summarize texts of any length with one model."""

    def __init__(self, model: Model, length: str = "medium", chunk_tokens: int | None = None,
                 mode: str = "auto", weights: tuple[float, float, float] | None = None) -> None:
        self.model = model
        self.length_words, self.max_new = LENGTHS[length]
        self.keep = EXTRACT_SENTENCES[length]
        self.form = prompts.form_for(model)
        if mode not in MODES:
            raise ValueError(f"unknown summary mode {mode!r}")
        self.mode = "extractive" if mode == "auto" else mode
        self.weights = weights or (W_LEAD, W_CENTRAL, W_MODEL)
        self._prompt: str | None = None
        overhead = 96 + self.max_new
        room = model.context_length - overhead
        if chunk_tokens is None and self.mode == "extractive" and not self.weights[2]:
            # No prompt to fit: read whole articles at once, so the lead bias sees the real lead
            # (shorter chunks measured worse), still as a stream.
            self.chunk_tokens = EXTRACT_CHUNK_TOKENS
        else:
            self.chunk_tokens = max(32, min(chunk_tokens or 1536, room))

    def chunks(self, text: str, cancel: CancelToken | None = None, fmt: str = "markdown") -> Iterator[str]:
        """The input's chunks, as a stream: the parser's prose blocks (no code, no front matter; see
        :func:`~lmassist.tasks.chunking.prose_pieces`) packed to :attr:`chunk_tokens`; no more once
        ``cancel`` is set, so Ctrl+C stops a long input's chunking too."""
        return chunk_text(prose_pieces(text, fmt), self.model.count_tokens, self.chunk_tokens, cancel=cancel)

    def summarize(self, text: str, progress: Progress | None = None, cancel: CancelToken | None = None,
                  fmt: str = "markdown", memo: Memo | None = None) -> dict[str, Any]:
        """Map (one summary a chunk) and reduce. With a ``memo`` each chunk's and each combining
        step's summary is looked up first and stored once finished (see :mod:`lmassist.tasks.chunk_memo`),
        so a run stopped by Ctrl+C redoes only the chunks it had not finished."""
        parts: list[str] = []
        info = []
        seen = 0
        for i, chunk in enumerate(self.chunks(text, cancel, fmt)):
            if cancel is not None and cancel.cancelled:
                break
            parts.append(memoized(memo, self.memo_key("map", chunk), cancel, lambda c=chunk: self._map(c, cancel)))
            info.append({"index": i, "tokens": self.model.count_tokens(chunk), "summary": parts[-1]})
            seen += len(chunk)
            if progress:  # the number of chunks is known at the end; until then, estimated by size
                progress(i + 1, max(i + 2, round(len(text) * (i + 1) / max(1, seen)) + 1))
        if cancel is not None and cancel.cancelled:
            return {"summary": "", "chunks": info}
        summary = parts[0] if len(parts) == 1 else self._reduce(parts, cancel, memo)
        if progress:
            total = len(parts) + (1 if len(parts) > 1 else 0)
            progress(total, total)
        return {"summary": summary.strip(), "chunks": info}

    def overview(self, summaries: Iterable[tuple[str, str]], cancel: CancelToken | None = None,
                 memo: Memo | None = None) -> str:
        """One summary of many files' summaries (``(source, summary)`` pairs, read as a stream):
        each group that fits a prompt summarized with the overview prompt, then combined as
        :meth:`summarize` combines chunks. Extractive mode picks sentences the same way."""
        entries = (f"{source}: {' '.join(text.split())}" if self.mode == "abstractive" else text
                   for source, text in summaries if text.strip())
        parts = [memoized(memo, self.memo_key("overview", g), cancel, lambda g=g: self._combine(g, "overview", cancel))
                 for g in chunk_text(entries, self.model.count_tokens, self.chunk_tokens, cancel=cancel)]
        if cancel is not None and cancel.cancelled:
            return ""
        return (parts[0] if len(parts) == 1 else self._reduce(parts, cancel, memo)).strip()

    def memo_key(self, step: str, text: str) -> str:
        """What a step's result is stored under: its input and everything else that changes it."""
        if self._prompt is None:  # the templates as the user's settings have them, read once
            self._prompt = "\0".join(prompts.template("summarize", self.form, k)
                                     for k in prompts.DEFAULTS["summarize"][self.form])
        return chunk_key("summarize", text, step, self.model.info.name, self.mode, self.length_words,
                         str(self.keep), repr(self.weights), self.form, self._prompt)

    def _map(self, chunk: str, cancel: CancelToken | None) -> str:
        return self._extract(chunk) if self.mode == "extractive" else self._one(chunk, "map", cancel)

    def _combine(self, text: str, step: str, cancel: CancelToken | None) -> str:
        return self._extract(text) if self.mode == "extractive" else self._one(text, step, cancel)

    def _reduce(self, parts: list[str], cancel: CancelToken | None, memo: Memo | None = None) -> str:
        """Combine partial summaries; when they do not fit one prompt, combine them in groups first."""
        def combine(group: str) -> str:
            return memoized(memo, self.memo_key("reduce", group), cancel, lambda: self._combine(group, "reduce", cancel))

        while len(parts) > 1:
            if cancel is not None and cancel.cancelled:
                return ""
            groups = list(chunk_text(parts, self.model.count_tokens, self.chunk_tokens, cancel=cancel))
            if len(groups) == 1:
                return combine(groups[0])
            if len(groups) >= len(parts):  # each part fills a chunk alone: pair them, or this never ends
                groups = ["\n\n".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
            parts = [combine(g) for g in groups if not (cancel is not None and cancel.cancelled)]
        return parts[0] if parts else ""

    def sentence_scores(self, text: str) -> tuple[list[str], list[float]]:
        """The candidate sentences of ``text`` (the first :data:`CANDIDATES`) and each one's score."""
        sentences = clean_sentences(text) or [s for s in split_sentences(" ".join(text.split())) if s]
        if not sentences:
            return [], []
        central = centrality(sentences)
        cands = sentences[:CANDIDATES]
        w_lead, w_central, w_model = self.weights
        model = [0.0] * len(cands)
        if w_model and self.model.supports_score and len(cands) > self.keep:
            model = _zscores(self.model_pmi(" ".join(sentences), cands))
        scores = [w_lead / math.sqrt(1 + i) + w_central * central[i] + w_model * model[i] for i in range(len(cands))]
        return cands, scores

    def model_pmi(self, text: str, sentences: list[str]) -> list[float]:
        """Per-token log-likelihood of each sentence as the summary after the text, minus without it."""
        room = max(64, self.model.context_length - 160)
        head, _ = fit_head(" ".join(text.split()), self.model.count_tokens, room)
        conts = [" " + s for s in sentences]
        cond = self.model.score(head + "\n\nTL;DR:", conts)
        free = self.model.score("TL;DR:", conts)
        sizes = [max(1, self.model.count_tokens(c)) for c in conts]
        return [(c - f) / n for c, f, n in zip(cond, free, sizes, strict=True)]

    def _extract(self, text: str) -> str:
        """The best :attr:`keep` sentences of ``text``, in their original order, copied verbatim."""
        cands, scores = self.sentence_scores(text)
        if not cands:
            return text.strip()
        best = sorted(sorted(range(len(cands)), key=lambda i: -scores[i])[: self.keep])
        return " ".join(_bounded(compress(cands[i])) for i in best)

    def _one(self, text: str, step: str, cancel: CancelToken | None) -> str:
        """The model's summary of ``text``: ``step`` is ``map`` (a chunk), ``reduce`` (partial
        summaries of one document) or ``overview`` (summaries of many files)."""
        opts = GenerationOptions(max_new_tokens=self.max_new, temperature=0.0, repetition_penalty=1.15)
        key = step if step != "map" else ("user" if self.form == "chat" else "prompt")
        if self.form == "chat":
            messages = [
                Message("system", prompts.template("summarize", "chat", "system")),
                Message("user", prompts.render(prompts.template("summarize", "chat", key),
                                               text=text.strip(), length_words=self.length_words)),
            ]
            out = self.model.chat(messages, opts, cancel).result()
        else:
            prompt = prompts.render(prompts.template("summarize", "completion", key),
                                    text=text.strip(), length_words=self.length_words)
            out = self.model.complete(prompt, opts.replace(stop=prompts.stops("summarize")), cancel).result()
        return out.strip()


SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "model", "length", "summaries"],
    "properties": {
        "task": {"const": "summarize"},
        "model": {"type": "string"},
        "length": {"enum": list(LENGTHS)},
        "mode": {"enum": ["extractive", "abstractive"],
                 "description": "extractive: sentences copied from the input; abstractive: generated"},
        "summaries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "summary", "input_tokens", "chunks"],
                "properties": {
                    "source": {"type": "string", "description": "file path or 'stdin'"},
                    "summary": {"type": "string"},
                    "input_tokens": {"type": "integer"},
                    "chunks": {"type": "array", "description": "one entry per chunk summarized in the map step",
                               "items": {"type": "object", "properties": {
                                   "index": {"type": "integer"}, "tokens": {"type": "integer"},
                                   "summary": {"type": "string"}}}},
                },
            },
        },
    },
}


class SummarizeTask(FileTask):
    name = "summarize"
    summary = "Summarize files or stdin; long inputs are chunked by tokens and summarized map-reduce."
    description = (
        "Summarize each FILE (or stdin, '-'). Inputs longer than the model's context are split by token "
        "count at paragraph and Markdown boundaries (code blocks and front matter are left out), each "
        "chunk is summarized, and the partial summaries are combined. By default the summary is the "
        "input's key sentences (extractive); --mode abstractive has the model write it."
    )
    params = (
        FILES,
        Param("length", "option", choices=tuple(LENGTHS), default="medium", help="How long the summary is."),
        Param("chunk_tokens", "option", flags=("--chunk-tokens",), type=int, default=None, metavar="N",
              help="Tokens per chunk in the map step (default: fits the model's context, at most 1536; "
              "8192 in extractive mode)."),
        Param("mode", "option", choices=MODES, default="auto",
              help="extractive: pick the input's key sentences (by position and centrality); "
              "abstractive: generate. auto is extractive, which scores higher with small models."),
        Param("plan", "flag", flags=("--plan",),
              help="Only show how the input would be chunked (chunks and tokens); generate nothing."),
    )
    json_schema = SUMMARY_SCHEMA
    examples = ("lmassist summarize notes.md", "cat report.txt | lmassist summarize - --length short",
                "lmassist summarize a.md b.md --json -o summaries.json")

    def check(self, values: dict[str, Any]) -> None:
        n = values.get("chunk_tokens")
        if n is not None and n < 32:
            raise LMAssistError("--chunk-tokens must be at least 32")

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        inputs = self.inputs(values)
        length = values.get("length") or "medium"
        summarizer = Summarizer(model, length, values.get("chunk_tokens"), mode=values.get("mode") or "auto")
        if values.get("plan"):
            return self._plan(model, summarizer, inputs, length, cancel)
        results = []
        for inp in inputs:
            if cancel is not None and cancel.cancelled:
                break
            out = summarizer.summarize(inp.text, progress, cancel, document_format(inp.source), values.get("memo"))
            tokens = sum(c["tokens"] for c in out["chunks"])
            results.append({"source": inp.source, "summary": out["summary"], "input_tokens": tokens, "chunks": out["chunks"]})
        if len(results) == 1:
            text = results[0]["summary"]
        else:
            text = "\n\n".join(f"## {r['source']}\n\n{r['summary']}" for r in results)
        return self.result(model, text, text, length=length, mode=summarizer.mode, summaries=results)

    def _plan(self, model: Model, summarizer: Summarizer, inputs: list[TaskInput], length: str,
              cancel: CancelToken | None = None) -> TaskResult:
        """The chunking alone: what a long input costs before any generation is spent on it."""
        results, lines = [], []
        for inp in inputs:
            sizes = [model.count_tokens(c) for c in summarizer.chunks(inp.text, cancel, document_format(inp.source))]
            results.append({"source": inp.source, "summary": "", "input_tokens": sum(sizes),
                            "chunks": [{"index": i, "tokens": n, "summary": ""} for i, n in enumerate(sizes)]})
            lines.append(f"{inp.source}: {sum(sizes)} tokens in {len(sizes)} chunks of at most "
                         f"{summarizer.chunk_tokens} tokens (+1 reduce step)" if len(sizes) > 1 else
                         f"{inp.source}: {sum(sizes)} tokens in 1 chunk")
        return self.result(model, "\n".join(lines), None, length=length, summaries=results)


def overview(model: Model, summaries: Iterable[tuple[str, str]] | Sequence[tuple[str, str]], values: dict[str, Any],
             cancel: CancelToken | None = None) -> str:
    """One summary of a set of per-file summaries (``(source, summary)`` pairs, consumed as a stream),
    for ``summarize DIR --overview``: ``values`` are the summarize task's (``length``, ``mode``,
    ``chunk_tokens``, ``memo``). Map-reduce when they do not fit one prompt; "" when cancelled."""
    summarizer = Summarizer(model, values.get("length") or "medium", values.get("chunk_tokens"),
                            mode=values.get("mode") or "auto")
    return summarizer.overview(summaries, cancel, values.get("memo"))

