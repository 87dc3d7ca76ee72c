"""Documents as structural blocks for the rewriting and summarizing tasks, and chunks that fit a
token budget.

Blocks come from one place, the CommonMark parser behind :mod:`lmassist.docindex.blocks` (the folder
index uses it too), with reST and source code through :mod:`lmassist.docindex.formats`; a regex
splitter that guessed at Markdown lived here and turned setext headings and indented code into
prose. Tasks see inputs far longer than a 135M model's context (a 10 MB file), so chunks are
measured in the model's own tokens and produced as a stream: blocks one at a time, chunks packed
greedily, so memory grows with one chunk, not the whole input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lmassist.docindex import formats
from lmassist.docindex.blocks import Block as DocBlock
from lmassist.docindex.blocks import fill_gaps, iter_markdown_blocks, iter_source_lines, source_lines
from lmassist.docindex.passages import format_of

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")

# Formats a rewriting task copies unchanged: code is code in every language (its comments and
# docstrings too: a translated comment can break a doctest or a tool that reads it). HTML is
# rewritten in place by lmassist.tasks.html_text, not through these blocks (visible text only).
UNCHANGED_FORMATS = frozenset({"code"})


def document_format(name: str) -> str:
    """The format a task reads an input as: by file name, and Markdown for stdin and plain text
    (CommonMark reads plain prose as paragraphs, and notes without a suffix are often Markdown)."""
    fmt = format_of(name) if name and name not in ("-", "stdin") else "markdown"
    return "markdown" if fmt == "text" else fmt


def document_blocks(text: str, fmt: str = "markdown", keep_blank: bool = True) -> Iterator[DocBlock]:
    """The blocks of ``text`` in order; with ``keep_blank`` they cover every line, so joining
    their texts gives ``text`` back. Markdown is a stream; reST, code and HTML are small enough
    in practice to split whole."""
    if fmt == "markdown":
        return iter_markdown_blocks(iter_source_lines(text), keep_blank)
    split = {"rst": formats.rst_blocks, "code": formats.code_blocks, "html": formats.html_blocks}[fmt]
    blocks = split(text)
    if keep_blank and fmt != "html":  # HTML blocks are visible text, not source lines
        blocks = fill_gaps(blocks, source_lines(text))
    return iter(blocks)


def prose_pieces(text: str, fmt: str = "markdown") -> Iterator[str]:
    """What a summary is made from: the texts of the non-blank blocks, without code, front matter
    and rules (not summary material) unless the input is code or has nothing else."""
    if fmt == "code":
        yield from (b.text for b in document_blocks(text, fmt, keep_blank=False))
        return
    prose = False
    for block in document_blocks(text, fmt, keep_blank=False):
        if block.kind == "heading" and block.heading_path:  # one form for ATX, setext and reST titles
            prose = True
            yield "# " + block.heading_path[-1] + "\n"
        elif not block.verbatim and block.kind != "html":
            prose = True
            yield block.text
    if not prose:
        yield from (b.text for b in document_blocks(text, fmt, keep_blank=False))


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Texts of the non-blank Markdown blocks of a line stream (qa's passages, the docs bench)."""
    for block in iter_markdown_blocks(lines):
        yield block.text


def split_sentences(text: str) -> list[str]:
    """Sentences by punctuation followed by a capital: crude, language-agnostic enough, no download."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def chunk_text(
    pieces: Iterable[str],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    separator: str = "\n\n",
    cancel: Any = None,
) -> Iterator[str]:
    """Pack pieces (paragraphs) greedily into chunks of at most ``max_tokens`` tokens.

    A piece longer than the budget is split by sentences, and a sentence longer than the budget by
    size (:func:`split_by_tokens`), so every chunk fits and no text is dropped. Each character is
    tokenized a bounded number of times whatever the layout: a 1 MB line with no newline costs
    what the same text with line breaks costs. Yields as it goes, so the caller can stream; stops
    early (nothing more yielded) once ``cancel.cancelled`` is true.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    sep_tokens = count_tokens(separator) if separator.strip() else 1
    current: list[str] = []
    used = 0
    for piece in pieces:
        if _cancelled(cancel):
            return
        piece = piece.strip()
        if not piece:
            continue
        # A piece far beyond the budget is never tokenized whole: its size is clear from its length.
        n = count_tokens(piece) if len(piece) <= max_tokens * _MAX_CHARS_PER_TOKEN else max_tokens + 1
        parts: Iterable[tuple[str, int]] = [(piece, n)] if n <= max_tokens else _split_long(
            piece, count_tokens, max_tokens, cancel)
        for part, size in parts:
            if _cancelled(cancel):
                return
            if current and used + sep_tokens + size > max_tokens:
                yield separator.join(current)
                current, used = [], 0
            used += size + (sep_tokens if current else 0)
            current.append(part)
    if current and not _cancelled(cancel):
        yield separator.join(current)


# No tokenizer we know packs more characters than this into one token on ordinary text; past it a
# piece is known to be over any budget without tokenizing it.
_MAX_CHARS_PER_TOKEN = 64


def _cancelled(cancel: Any) -> bool:
    return cancel is not None and bool(getattr(cancel, "cancelled", False))


def _split_long(text: str, count_tokens: Callable[[str], int], max_tokens: int,
                cancel: Any = None) -> Iterator[tuple[str, int]]:
    sentences = split_sentences(text)
    if len(sentences) <= 1:
        yield from split_by_tokens(text, count_tokens, max_tokens, cancel)
        return
    for sentence in sentences:
        if _cancelled(cancel):
            return
        n = count_tokens(sentence) if len(sentence) <= max_tokens * _MAX_CHARS_PER_TOKEN else max_tokens + 1
        if n <= max_tokens:
            yield sentence, n
        else:
            yield from split_by_tokens(sentence, count_tokens, max_tokens, cancel)


def split_by_tokens(text: str, count_tokens: Callable[[str], int], max_tokens: int,
                    cancel: Any = None) -> Iterator[tuple[str, int]]:
    """Cut ``text`` into consecutive pieces of at most ``max_tokens`` tokens, at spaces where it can.

    Linear: each cut is placed by a characters-per-token estimate (from the piece before it) and
    then verified by tokenizing that piece alone, so the text is tokenized about once in all,
    however long it is and whether or not it has spaces. Yields ``(piece, tokens)``; the pieces,
    joined with the whitespace between them, are the text.
    """
    n, pos = len(text), 0
    ratio: float | None = None
    while pos < n:
        if _cancelled(cancel):
            return
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return
        if ratio is None:  # first estimate from a bounded sample, never the whole text
            sample = text[pos: pos + max_tokens * 8]
            ratio = len(sample) / max(1, count_tokens(sample))
        length = max(1, int(max_tokens * ratio * 0.9))
        while True:
            end = _cut_at_space(text, pos, pos + length)
            piece = text[pos:end].rstrip()
            tokens = count_tokens(piece)
            if tokens <= max_tokens or len(piece) <= 1:
                break
            length = max(1, min(len(piece) - 1, int(len(piece) * max_tokens / tokens * 0.9)))
        ratio = len(piece) / max(1, tokens)
        yield piece, tokens
        pos = end


def _cut_at_space(text: str, start: int, end: int) -> int:
    """``end``, moved back to just after the last whitespace in the second half of the span (if any)."""
    if end >= len(text):
        return len(text)
    lo = start + (end - start) // 2
    for i in range(end, lo, -1):
        if text[i - 1].isspace():
            return i
    return end


def fit_head(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> tuple[str, bool]:
    """The head of ``text`` that fits in ``max_tokens`` tokens, and whether anything was cut.

    Only about ``max_tokens`` tokens' worth of text is ever tokenized, so fitting a 10 MB input
    costs what fitting a page does.
    """
    if max_tokens < 1:
        return "", bool(text.strip())
    if len(text) <= max_tokens * _MAX_CHARS_PER_TOKEN and count_tokens(text) <= max_tokens:
        return text, False
    head, _ = next(split_by_tokens(text, count_tokens, max_tokens), ("", 0))
    return head, True

