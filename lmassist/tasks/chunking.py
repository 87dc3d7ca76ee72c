"""Splitting text into Markdown-aware blocks and packing them into chunks that fit a token budget.

Tasks see inputs far longer than a 135M model's context (a 10 MB file), so splitting must be by the
model's own token count, must never cut a fenced code block or a heading from its paragraph when it
can help it, and must work as a stream: blocks are produced one at a time and chunks are packed
greedily, so memory grows with one chunk, not the whole input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

BlockKind = Literal["code", "heading", "list", "quote", "table", "blank", "text", "html", "rule"]

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_LIST = re.compile(r"^\s*([-*+]|\d{1,9}[.)])\s+")
_RULE = re.compile(r"^ {0,3}([-*_])( *\1){2,}\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass
class Block:
    """A run of lines that belongs together: a paragraph, a heading, a list item, a code fence."""

    kind: BlockKind
    text: str  # the exact source lines, newlines included, so joining blocks gives the input back


def iter_blocks(lines: Iterable[str]) -> Iterator[Block]:
    """Markdown blocks from lines (with their line endings); ``"".join`` of the texts is the input.

    Fenced code is one block up to its closing fence (or the end of the input); a heading, a rule
    and each list item are blocks of their own; blank lines separate paragraphs and are kept as
    ``blank`` blocks so the layout survives a round trip.
    """
    buf: list[str] = []
    kind: BlockKind = "text"
    fence: str | None = None

    def flush() -> Iterator[Block]:
        nonlocal buf
        if buf:
            yield Block(kind, "".join(buf))
            buf = []

    for line in lines:
        stripped = line.rstrip("\r\n")
        if fence is not None:
            buf.append(line)
            m = _FENCE.match(stripped)
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence) and not stripped[m.end():].strip():
                yield from flush()
                fence = None
            continue
        m = _FENCE.match(stripped)
        if m:
            yield from flush()
            kind, fence = "code", m.group(2)
            buf.append(line)
            continue
        if not stripped.strip():
            if kind == "blank":
                buf.append(line)
                continue
            yield from flush()
            kind = "blank"
            buf.append(line)
            continue
        if _HEADING.match(stripped) or _RULE.match(stripped):
            yield from flush()
            yield Block("heading" if _HEADING.match(stripped) else "rule", line)
            kind = "text"
            continue
        if _LIST.match(stripped):
            yield from flush()
            kind = "list"
            buf.append(line)
            continue
        line_kind: BlockKind = "quote" if stripped.lstrip().startswith(">") else (
            "table" if stripped.lstrip().startswith("|") else "html" if stripped.lstrip().startswith("<") else "text"
        )
        if kind == "list" and buf and (stripped.startswith((" ", "\t"))):
            buf.append(line)  # a list item's continuation line
            continue
        if kind != line_kind or kind == "blank":
            yield from flush()
            kind = line_kind
        buf.append(line)
    yield from flush()


def split_blocks(text: str) -> list[Block]:
    return list(iter_blocks(text.splitlines(keepends=True)))


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


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Paragraph texts (non-blank blocks) from lines, as a stream."""
    for block in iter_blocks(lines):
        if block.kind != "blank":
            yield block.text
