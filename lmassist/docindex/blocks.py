"""Documents split into structural blocks, each with its 1-based line range and heading path.

The regex splitter in ``tasks/chunking.py`` guessed at Markdown and got it wrong (a setext heading
read as text, an indented code block translated, list continuation lines pulled apart), so Markdown
goes through a real CommonMark parser (markdown-it-py, already installed with rich) whose tokens
carry line ranges. reStructuredText, HTML, source code and plain text get splitters of their own in
:mod:`lmassist.docindex.formats`; :mod:`lmassist.docindex.passages` picks one by file name and
sizes blocks into passages.

Two users: the folder index (retrieval wants passages that keep a heading with its text, and
``path:line`` citations) and translate/summarize (:mod:`lmassist.tasks.chunking`), which need the
exact source back and must know which blocks to leave untouched (:attr:`Block.verbatim`). For the
second, ``markdown_blocks(text, keep_blank=True)`` covers every line, so ``"".join(b.text ...)`` is
the input (plain text too: without a heading, list or fence it comes back as paragraphs and blank
runs), and :func:`iter_markdown_blocks` gives the same blocks as a stream from lines, so a 100 MB
file is never parsed, or held as tokens, whole.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

BlockKind = Literal["heading", "paragraph", "list_item", "code", "quote", "table", "html", "rule",
                    "blank", "text", "front_matter"]

# Kinds whose text must reach the reader unchanged: code is code in every language, and a rule or a
# blank run has no words to translate.
VERBATIM_KINDS = frozenset({"code", "rule", "blank", "front_matter"})


@dataclass(frozen=True)
class Block:
    """A run of source lines that belongs together.

    ``start_line``/``end_line`` are 1-based and inclusive (what an editor shows, what a citation
    says). ``text`` is the exact source of those lines for Markdown, reST, code and plain text; for
    HTML it is the visible text (tags stripped). ``heading_path`` names the sections it sits in,
    outermost first; a heading's own path ends with itself.
    """

    kind: BlockKind
    start_line: int
    end_line: int
    text: str
    heading_path: tuple[str, ...] = ()

    @property
    def verbatim(self) -> bool:
        """True for blocks a rewriting task (translate, proofread) must copy unchanged: code, and a
        note's YAML front matter (its keys are read by programs)."""
        return self.kind in VERBATIM_KINDS

    @property
    def heading(self) -> str:
        """The heading path as one line, e.g. ``"Install > Linux"``."""
        return " > ".join(self.heading_path)


# ---------------------------------------------------------------- lines

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def source_lines(text: str) -> list[str]:
    """Lines with their endings, split where CommonMark splits (``\\n``, ``\\r\\n``, ``\\r``).

    ``str.splitlines`` also breaks at form feeds and U+2028, which the parser does not, and the
    line numbers in citations would drift.
    """
    return _LINE.findall(text)


def iter_source_lines(text: str) -> Iterator[str]:
    """:func:`source_lines` one at a time, so a large text is never held twice."""
    return (m.group(0) for m in _LINE.finditer(text))


def fill_gaps(blocks: Iterable[Block], lines: list[str]) -> list[Block]:
    """``blocks`` (sorted, not overlapping) plus blocks for the lines none of them covers.

    Blank runs become ``blank`` blocks; anything else (a Markdown link reference definition, which
    the parser consumes without a token) becomes ``text``, so no line is ever lost.
    """
    out: list[Block] = []
    line = 1
    for b in blocks:
        out.extend(_gap(lines, line, b.start_line - 1, out[-1].heading_path if out else ()))
        out.append(b)
        line = b.end_line + 1
    out.extend(_gap(lines, line, len(lines), out[-1].heading_path if out else ()))
    return out


def _gap(lines: list[str], first: int, last: int, path: tuple[str, ...]) -> list[Block]:
    """Blocks for lines ``first..last`` (1-based): runs of blank and of non-blank lines."""
    out: list[Block] = []
    i = first
    while i <= last:
        blank = not lines[i - 1].strip()
        j = i
        while j + 1 <= last and (not lines[j].strip()) == blank:
            j += 1
        out.append(Block("blank" if blank else "text", i, j, "".join(lines[i - 1:j]), path))
        i = j + 1
    return out


def trim_blank_tail(lines: list[str], start: int, end: int) -> int:
    """``end`` moved back over blank lines (a list item's range runs up to the next item)."""
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


# ---------------------------------------------------------------- Markdown

# Block structure only: inline parsing (emphasis, links) is a third of the parser's time and no
# block boundary depends on it; heading titles are cleaned of inline markup by ``_plain`` instead.
@functools.cache
def _parser() -> Any:
    """The CommonMark parser, built on first use: every ``lmassist`` command imports this module
    (the ``docs`` commands register at start-up), and markdown-it is a large import that only
    indexing needs."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").disable(["inline", "text_join"])


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"(?<!\w)[*_`]+|[*_`]+(?!\w)")


def _plain(title: str) -> str:
    """A heading's words without inline markup: ``[Install](x) *now*`` -> ``Install now``."""
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", title)).split())


_TOP_KINDS: dict[str, BlockKind] = {
    "paragraph_open": "paragraph", "fence": "code", "code_block": "code", "blockquote_open": "quote",
    "table_open": "table", "html_block": "html", "hr": "rule",
}


def markdown_blocks(text: str, keep_blank: bool = False) -> list[Block]:
    """CommonMark blocks: headings (ATX and setext), paragraphs, one block per list item (its
    continuation lines and nested lists included), fenced and indented code, quotes, tables, HTML.

    With ``keep_blank`` the blocks cover every line, in order, so joining their texts gives
    ``text`` back (what a rewriting task needs); without, blank runs are left out.
    """
    return list(iter_markdown_blocks(source_lines(text), keep_blank))


# Lines parsed at a time by :func:`iter_markdown_blocks`: enough for front matter (200 lines) and
# for the parser's per-call cost to vanish, small enough that a 100 MB file never sits in tokens.
SEGMENT_LINES = 2000
# Front matter longer than this is not front matter.
FRONT_MATTER_LINES = 200


def iter_markdown_blocks(lines: Iterable[str], keep_blank: bool = False) -> Iterator[Block]:
    """:func:`markdown_blocks` as a stream from lines (a file object will do), for inputs of any size.

    The parser sees a segment at a time. Every top-level block of a segment but the last is final
    (a later block started, and CommonMark never reopens a block), so those are yielded and the
    last one, which the next lines may continue (a fence, a setext underline, a list item), is
    parsed again with them; a list gives up all items but its last. Memory is one segment plus
    the longest block; the parser, not a guess, decides every boundary.
    """
    source = (part for line in lines for part in source_lines(line))
    pending = list(itertools.islice(source, max(SEGMENT_LINES, FRONT_MATTER_LINES)))
    front = front_matter_end(pending)
    if front:
        yield Block("front_matter", 1, front, "".join(pending[:front]))
    stream = _Stream(pending[front:], front, keep_blank)
    want, exhausted = SEGMENT_LINES, len(pending) < max(SEGMENT_LINES, FRONT_MATTER_LINES)
    while stream.pending:
        found = _top_blocks(stream.pending)
        cut = len(stream.pending) + 1 if exhausted else _safe_cut(found, stream.pending)
        if cut > 1:
            yield from stream.emit([b for b in found if b[1] < cut], cut)
            want = SEGMENT_LINES
        else:  # one block so far, maybe unfinished: read on (doubling keeps a long block linear)
            want *= 2
        if not exhausted:
            more = list(itertools.islice(source, want))
            stream.pending += more
            exhausted = len(more) < want


def _safe_cut(found: list[_Found], lines: list[str]) -> int:
    """The first line (1-based) that more input could still change: the last block's start, or
    with no block, the line after the last blank one."""
    if found:
        return found[-1][1]
    return next((i + 2 for i in range(len(lines) - 1, -1, -1) if not lines[i].strip()), 1)


_Found = tuple[BlockKind, int, int, int, str]  # kind, first and last line (of the segment), level, title


class _Stream:
    """The lines not yet yielded, where they sit in the file, and the headings above them."""

    def __init__(self, pending: list[str], offset: int, keep_blank: bool) -> None:
        self.pending, self.offset, self.keep_blank = pending, offset, keep_blank
        self.stack: list[tuple[int, str]] = []

    def emit(self, found: list[_Found], cut: int) -> Iterator[Block]:
        """Blocks for the segment's lines before ``cut`` (1-based), gaps filled; then drop them."""
        line = 1
        for kind, start, end, level, title in found:
            yield from self._gap(line, start - 1)
            if kind == "heading":
                self.stack = [(lv, t) for lv, t in self.stack if lv < level] + [(level, title)]
            end = trim_blank_tail(self.pending, start, min(end, cut - 1))
            yield self._block(kind, start, end)
            line = end + 1
        yield from self._gap(line, cut - 1)
        del self.pending[:cut - 1]
        self.offset += cut - 1

    def _gap(self, first: int, last: int) -> Iterator[Block]:
        for b in _gap(self.pending, first, last, self.path):
            if self.keep_blank or b.kind != "blank":
                yield replace(b, start_line=b.start_line + self.offset, end_line=b.end_line + self.offset)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.stack)

    def _block(self, kind: BlockKind, start: int, end: int) -> Block:
        text = "".join(self.pending[start - 1:end])
        return Block(kind, start + self.offset, end + self.offset, text, self.path)


def _top_blocks(lines: list[str]) -> list[_Found]:
    """The top-level blocks the parser finds in ``lines``: one per list item, headings with their
    level and plain title."""
    tokens = _parser().parse("".join(lines))
    found: list[_Found] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.nesting == -1 or tok.map is None:
            continue
        start, end = tok.map[0] + 1, tok.map[1]
        if tok.type == "heading_open":
            found.append(("heading", start, end, int(tok.tag[1]), _plain(tokens[i + 1].content)))
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            found.extend(("list_item", t.map[0] + 1, t.map[1], 0, "") for t in _list_items(tokens, i))
        elif tok.type in _TOP_KINDS:
            found.append((_TOP_KINDS[tok.type], start, end, 0, ""))
    return found


def front_matter_end(lines: list[str]) -> int:
    """The number of lines of YAML front matter (``---`` … ``---`` or ``...`` at the very top, as
    Jekyll, Hugo and Obsidian notes have), 0 when there is none. CommonMark alone reads it as a
    rule followed by a setext heading, and a translator would translate its keys."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for i, line in enumerate(lines[1:FRONT_MATTER_LINES], 2):
        if line.rstrip() in ("---", "..."):
            return i
    return 0


def _list_items(tokens: list, i: int) -> list:
    """The opening tokens of the items of the list whose opening token is ``tokens[i]``."""
    items = []
    for tok in tokens[i + 1:]:
        if tok.level == 0:  # the list's closing token
            break
        if tok.type == "list_item_open" and tok.level == 1 and tok.map is not None:
            items.append(tok)
    return items
