"""A document's words rewritten (translated) while its markup stays byte for byte.

A small model mangles markup, so it is never shown any: each block the parser found gives up only
its words, one run of prose at a time, and the markup goes back around the new words. A heading
keeps its ``#`` marks or its setext underline, a list item its marker and the indentation of its
continuation lines, a quote its ``>`` marks (items and quotes are parsed again inside, so a code
block or a nested list in them is found too), a table its pipes and delimiter row. Code, HTML,
rules and front matter are never rewritten. reST gets the same treatment for its titles (the
adornment lengthened to the new title, as docutils requires), paragraphs and list items; its
directives and literal blocks are left alone.

A paragraph keeps its lines: the words of all its lines are rewritten together (a sentence often
runs over a line break, and a model translates whole sentences best) and then laid back over the
same number of lines, where the source broke them when the word count is unchanged, else at the
same fractions of the text.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable

from lmassist.docindex.blocks import Block, markdown_blocks, source_lines

Rewrite = Callable[[str], str]  # one run of prose (a paragraph's lines joined by spaces) -> new text

REWRITTEN_KINDS = frozenset({"heading", "paragraph", "list_item", "quote", "table"})

_WORD = re.compile(r"[^\W\d_]")
# A line: its indentation, its words, and its end (a hard break's spaces or backslash, reST's "::").
_LINE = re.compile(r"^([ \t]*)(.*?)((?:::)?\\?[ \t]*(?:\r\n|\r|\n)?)$", re.S)
_ATX = re.compile(r"^( {0,3}#{1,6}[ \t]+)(.*?)((?:[ \t]+#+)?[ \t]*(?:\r\n|\r|\n)?)$", re.S)
_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])")
_QUOTE = re.compile(r" {0,3}> ?")
_CELL = re.compile(r"^(\s*)(.*?)(\s*)$", re.S)
_PIPE = re.compile(r"((?<!\\)\|)")
_ENDING = re.compile(r"(\r\n|\r|\n)?$")


def has_words(text: str) -> bool:
    return bool(_WORD.search(text))


def needs_rewrite(block: Block) -> bool:
    """Whether a block has words a rewriting task changes (code, rules and blank runs have none)."""
    return block.kind in REWRITTEN_KINDS and has_words(block.text)


def rewrite_block(block: Block, rewrite: Rewrite, fmt: str = "markdown") -> str:
    """The block's source with its prose runs replaced by ``rewrite`` of them."""
    if fmt == "rst":
        return _rst_block(block, rewrite)
    return rewrite_markdown_block(block.kind, block.text, rewrite)


def rewrite_markdown(text: str, rewrite: Rewrite) -> str:
    """A whole (small) Markdown document rewritten block by block: the inside of a list item or quote."""
    return "".join(rewrite_markdown_block(b.kind, b.text, rewrite) if needs_rewrite(b) else b.text
                   for b in markdown_blocks(text, keep_blank=True))


def rewrite_markdown_block(kind: str, text: str, rewrite: Rewrite) -> str:
    lines = source_lines(text)
    if kind == "heading":
        m = _ATX.match(lines[0])
        if len(lines) == 1 and m:
            return m.group(1) + rewrite(m.group(2)) + m.group(3) if has_words(m.group(2)) else text
        return rewrite_lines(lines[:-1], rewrite) + lines[-1]  # setext: the underline stays as it is
    if kind == "paragraph":
        return rewrite_lines(lines, rewrite)
    if kind == "list_item":
        return _container(lines, *_item_parts(lines), rewrite)
    if kind == "quote":
        parts = [_QUOTE.match(ln) for ln in lines]
        prefixes = [m.group(0) if m else "" for m in parts]
        return _container(lines, prefixes, [ln[len(p):] for ln, p in zip(lines, prefixes, strict=True)], rewrite)
    if kind == "table":
        return "".join(ln if i == 1 else _table_row(ln, rewrite) for i, ln in enumerate(lines))
    return text


def rewrite_lines(lines: list[str], rewrite: Rewrite, first_prefix: str = "") -> str:
    """The words of ``lines`` rewritten together and laid back over as many lines, each keeping its
    indentation and its end (``first_prefix``: a marker the first line starts with, kept too)."""
    parts = [_LINE.match(ln).groups() for ln in lines]  # type: ignore[union-attr]
    if first_prefix:
        lead, body, end = _LINE.match(lines[0][len(first_prefix):]).groups()  # type: ignore[union-attr]
        parts[0] = (first_prefix + lead, body, end)
    bodies = [body for _, body, _ in parts]
    joined = " ".join(b for b in bodies if b)
    if not has_words(joined):
        return "".join(lines)
    new = rewrap(rewrite(joined), bodies)
    out = [parts[i][0] + body + parts[i][2] for i, body in enumerate(new[:-1])]
    return "".join(out) + parts[len(new) - 1][0] + new[-1] + parts[-1][2]


def rewrap(text: str, bodies: list[str]) -> list[str]:
    """``text`` cut into ``len(bodies)`` lines (fewer only when it has fewer words): at the source's
    breaks when the word count is the same, else where the same fraction of the characters falls."""
    words = text.split()
    k = len(bodies)
    if k <= 1 or len(words) <= 1:
        return [" ".join(words)]
    counts = [len(b.split()) for b in bodies]
    if sum(counts) == len(words) and all(counts):
        bounds = [sum(counts[: i + 1]) for i in range(k - 1)]
    else:
        k = min(k, len(words))
        total, ends = sum(len(b) + 1 for b in bodies), []
        at = 0
        for b in bodies:
            at += len(b) + 1
            ends.append(at / total)
        cum, at = [], 0
        for w in words:
            at += len(w) + 1
            cum.append(at)
        bounds, prev = [], 0
        for i in range(k - 1):
            j = bisect.bisect_left(cum, ends[i] * cum[-1]) + 1
            prev = min(max(j, prev + 1), len(words) - (k - 1 - i))
            bounds.append(prev)
    edges = [0, *bounds, len(words)]
    return [" ".join(words[a:b]) for a, b in zip(edges, edges[1:], strict=False)]


def _item_parts(lines: list[str]) -> tuple[list[str], list[str]]:
    """Each line of a list item cut into the item's markup (marker or continuation indent) and its content."""
    m = _ITEM.match(lines[0])
    marker = m.group(0) if m else ""
    after = lines[0][len(marker):]
    spaces = len(after) - len(after.lstrip(" \t"))
    if not after.strip():  # an item that starts with a blank line
        width, first = len(marker) + 1, lines[0].rstrip("\r\n")
    else:  # five spaces or more after the marker: one of them is the marker's, the rest indent code
        width = len(marker) + (1 if spaces >= 5 else spaces)
        first = lines[0][:width]
    prefixes = [first]
    for line in lines[1:]:
        prefixes.append(line[: min(width, len(line) - len(line.lstrip(" ")))])
    return prefixes, [ln[len(p):] for ln, p in zip(lines, prefixes, strict=True)]


def _container(lines: list[str], prefixes: list[str], contents: list[str], rewrite: Rewrite) -> str:
    """A list item or quote: its content parsed and rewritten as a document, the markup put back."""
    new = source_lines(rewrite_markdown("".join(contents), rewrite))
    follow = prefixes[-1] if len(prefixes) > 1 else ""
    return "".join((prefixes[i] if i < len(prefixes) else follow) + ln for i, ln in enumerate(new))


def _table_row(line: str, rewrite: Rewrite) -> str:
    """A table row with each cell's words rewritten; pipes (not escaped ones) and spacing kept."""
    parts = _PIPE.split(line)
    for i in range(0, len(parts), 2):
        cell = _CELL.match(parts[i])
        if cell and has_words(cell.group(2)):
            parts[i] = cell.group(1) + rewrite(cell.group(2)) + cell.group(3)
    return "".join(parts)


# ---------------------------------------------------------------- reStructuredText

_RST_ITEM = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,9}[.)]|#\.|\(\d{1,9}\))[ \t]+")


def _rst_block(block: Block, rewrite: Rewrite) -> str:
    lines = source_lines(block.text)
    if block.kind == "heading":
        return _rst_title(lines, rewrite)
    if block.kind != "paragraph" or lines[0].lstrip().startswith(".."):  # directives, comments, targets
        return block.text
    out, unit = [], [lines[0]]
    for line in lines[1:]:
        # A unit is a list item or a run of lines at one indentation: in reST indentation is
        # structure (a definition under its term, a block quote), so words never cross it.
        if _RST_ITEM.match(line) or _indent(line) != _content_indent(unit[0]):
            out.append(_rst_unit(unit, rewrite))
            unit = []
        unit.append(line)
    out.append(_rst_unit(unit, rewrite))
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _content_indent(line: str) -> int:
    """Where the text of a unit starting with ``line`` sits: after a list marker, or its indentation."""
    m = _RST_ITEM.match(line)
    return len(m.group(0)) if m else _indent(line)


def _rst_unit(lines: list[str], rewrite: Rewrite) -> str:
    m = _RST_ITEM.match(lines[0])
    return rewrite_lines(lines, rewrite, m.group(0) if m else "")


def _rst_title(lines: list[str], rewrite: Rewrite) -> str:
    """The title rewritten; over- and underline lengthened to its new width when it grew."""
    at = 1 if len(lines) == 3 else 0
    title = lines[at]
    lead = title[: len(title) - len(title.lstrip())]
    new_title = lead + rewrite(title.strip()) + _ENDING.search(title).group(0)  # type: ignore[union-attr]
    width = _width(new_title.rstrip("\r\n").rstrip())
    out = []
    for i, line in enumerate(lines):
        if i == at:
            out.append(new_title)
            continue
        body = line.rstrip("\r\n").rstrip()
        out.append(body + body[:1] * max(0, width - len(body)) + _ENDING.search(line).group(0))  # type: ignore[union-attr]
    return "".join(out)


def _width(text: str) -> int:
    """Columns ``text`` takes (wide East Asian characters take two), as docutils measures a title."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
