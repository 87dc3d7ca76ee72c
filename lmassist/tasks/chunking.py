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
from typing import Literal

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
) -> Iterator[str]:
    """Pack pieces (paragraphs) greedily into chunks of at most ``max_tokens`` tokens.

    A piece longer than the budget is split by sentences, and a sentence longer than the budget by
    words, so every chunk fits and no text is dropped. Yields as it goes, so the caller can stream.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    sep_tokens = count_tokens(separator) if separator.strip() else 1
    current: list[str] = []
    used = 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        n = count_tokens(piece)
        parts = [(piece, n)] if n <= max_tokens else list(_split_long(piece, count_tokens, max_tokens))
        for part, size in parts:
            if current and used + sep_tokens + size > max_tokens:
                yield separator.join(current)
                current, used = [], 0
            used += size + (sep_tokens if current else 0)
            current.append(part)
    if current:
        yield separator.join(current)


def _split_long(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> Iterator[tuple[str, int]]:
    sentences = split_sentences(text)
    if len(sentences) <= 1:
        yield from _split_words(text, count_tokens, max_tokens)
        return
    for sentence in sentences:
        n = count_tokens(sentence)
        if n <= max_tokens:
            yield sentence, n
        else:
            yield from _split_words(sentence, count_tokens, max_tokens)


def _split_words(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> Iterator[tuple[str, int]]:
    words = text.split()
    current: list[str] = []
    for word in words:
        candidate = " ".join([*current, word])
        if current and count_tokens(candidate) > max_tokens:
            chunk = " ".join(current)
            yield chunk, count_tokens(chunk)
            current = [word]
        else:
            current.append(word)
        while len(current) == 1 and count_tokens(current[0]) > max_tokens:  # a giant "word" (base64...)
            w = current[0]
            cut = max(1, len(w) * max_tokens // (2 * count_tokens(w)))
            yield w[:cut], count_tokens(w[:cut])
            current = [w[cut:]]
    if current:
        chunk = " ".join(current)
        yield chunk, count_tokens(chunk)


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Paragraph texts (non-blank blocks) from lines, as a stream."""
    for block in iter_blocks(lines):
        if block.kind != "blank":
            yield block.text
