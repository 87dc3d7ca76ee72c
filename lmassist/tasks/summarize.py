"""Summarization, map-reduce over token-sized chunks so any input length fits any context.

The input is cut into Markdown-aware chunks by the model's own token count (paragraphs kept whole
where they fit); each chunk is summarized (map), and the partial summaries are combined (reduce),
recursively if they are themselves too long. Chat models get a chat instruction; base models the
classic "TL;DR:" cue with a stop string.
"""

from __future__ import annotations

import io
from typing import Any

from lmassist.generation import CancelToken, GenerationOptions, Message, Model
from lmassist.tasks import prompts
from lmassist.tasks.base import Param, Progress, Task, TaskResult, read_inputs
from lmassist.tasks.chunking import chunk_text, paragraphs

LENGTHS: dict[str, tuple[str, int]] = {
    "short": ("one or two sentences", 64),
    "medium": ("three sentences", 128),
    "long": ("one paragraph of five to eight sentences", 256),
}


class Summarizer:
    """Summarize texts of any length with one model."""

    def __init__(self, model: Model, length: str = "medium", chunk_tokens: int | None = None) -> None:
        self.model = model
        self.length_words, self.max_new = LENGTHS[length]
        self.form = prompts.form_for(model)
        overhead = 96 + self.max_new
        room = model.context_length - overhead
        self.chunk_tokens = max(32, min(chunk_tokens or 1536, room))

    def chunks(self, text: str) -> list[str]:
        """The input's chunks, produced from a line stream (no second copy of a large input)."""
        return list(chunk_text(paragraphs(io.StringIO(text)), self.model.count_tokens, self.chunk_tokens))

    def summarize(self, text: str, progress: Progress | None = None,
                  cancel: CancelToken | None = None) -> dict[str, Any]:
        chunks = self.chunks(text)
        total = len(chunks) + (1 if len(chunks) > 1 else 0)
        parts: list[str] = []
        info = []
        for i, chunk in enumerate(chunks):
            if cancel is not None and cancel.cancelled:
                break
            parts.append(self._one(chunk, reduce=False, cancel=cancel))
            info.append({"index": i, "tokens": self.model.count_tokens(chunk), "summary": parts[-1]})
            if progress:
                progress(i + 1, total)
        summary = parts[0] if len(parts) == 1 else self._reduce(parts, cancel)
        if progress:
            progress(total, total)
        return {"summary": summary.strip(), "chunks": info}

    def _reduce(self, parts: list[str], cancel: CancelToken | None) -> str:
        """Combine partial summaries; when they do not fit one prompt, combine them in groups first."""
        while len(parts) > 1:
            groups = list(chunk_text(parts, self.model.count_tokens, self.chunk_tokens))
            if len(groups) == 1:
                return self._one(groups[0], reduce=True, cancel=cancel)
            parts = [self._one(g, reduce=True, cancel=cancel) for g in groups]
        return parts[0] if parts else ""

    def _one(self, text: str, reduce: bool, cancel: CancelToken | None) -> str:
        opts = GenerationOptions(max_new_tokens=self.max_new, temperature=0.0, repetition_penalty=1.15)
        key = "reduce" if reduce else ("user" if self.form == "chat" else "prompt")
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


class SummarizeTask(Task):
    name = "summarize"
    summary = "Summarize files or stdin; long inputs are chunked by tokens and summarized map-reduce."
    description = (
        "Summarize each FILE (or stdin, '-'). Inputs longer than the model's context are split by token "
        "count at paragraph and Markdown boundaries, each chunk is summarized, and the partial summaries "
        "are combined."
    )
    params = (
        Param("files", "argument", metavar="[FILE|-]", multiple=True, files=True),
        Param("length", "option", choices=tuple(LENGTHS), default="medium", help="How long the summary is."),
        Param("chunk_tokens", "option", flags=("--chunk-tokens",), type=int, default=None, metavar="N",
              help="Tokens per chunk in the map step (default: fits the model's context, at most 1536)."),
        Param("plan", "flag", flags=("--plan",),
              help="Only show how the input would be chunked (chunks and tokens); generate nothing."),
    )
    json_schema = SUMMARY_SCHEMA
    reads_files = True
    examples = ("lmassist summarize notes.md", "cat report.txt | lmassist summarize - --length short",
                "lmassist summarize a.md b.md --json -o summaries.json")

    def check(self, values: dict[str, Any]) -> None:
        n = values.get("chunk_tokens")
        if n is not None and n < 32:
            from lmassist.generation import LMAssistError

            raise LMAssistError("--chunk-tokens must be at least 32")

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        inputs = read_inputs(values.get("files") or (), values.get("encoding"))
        summarizer = Summarizer(model, values.get("length") or "medium", values.get("chunk_tokens"))
        results = []
        if values.get("plan"):
            return self._plan(model, summarizer, inputs, values)
        for inp in inputs:
            out = summarizer.summarize(inp.text, progress, cancel)
            tokens = sum(c["tokens"] for c in out["chunks"])
            results.append({"source": inp.source, "summary": out["summary"], "input_tokens": tokens, "chunks": out["chunks"]})
        if len(results) == 1:
            text = results[0]["summary"]
        else:
            text = "\n\n".join(f"## {r['source']}\n\n{r['summary']}" for r in results)
        data = {"task": "summarize", "model": model.info.name, "length": values.get("length") or "medium",
                "summaries": results}
        return TaskResult(text=text, data=data, markdown=text)

    def _plan(self, model: Model, summarizer: Summarizer, inputs: list[Any], values: dict[str, Any]) -> TaskResult:
        """The chunking alone: what a long input costs before any generation is spent on it."""
        results, lines = [], []
        for inp in inputs:
            sizes = [model.count_tokens(c) for c in summarizer.chunks(inp.text)]
            results.append({"source": inp.source, "summary": "", "input_tokens": sum(sizes),
                            "chunks": [{"index": i, "tokens": n, "summary": ""} for i, n in enumerate(sizes)]})
            lines.append(f"{inp.source}: {sum(sizes)} tokens in {len(sizes)} chunks of at most "
                         f"{summarizer.chunk_tokens} tokens (+1 reduce step)" if len(sizes) > 1 else
                         f"{inp.source}: {sum(sizes)} tokens in 1 chunk")
        data = {"task": "summarize", "model": model.info.name, "length": values.get("length") or "medium",
                "summaries": results}
        return TaskResult(text="\n".join(lines), data=data)
