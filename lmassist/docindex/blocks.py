"""Documents split into structural blocks, each with its 1-based line range and heading path.

The regex splitter in ``tasks/chunking.py`` guessed at Markdown and got it wrong (a setext heading
read as text, an indented code block translated, list continuation lines pulled apart), so Markdown
goes through a real CommonMark parser (markdown-it-py, already installed with rich) whose tokens
carry line ranges. reStructuredText, HTML, source code and plain text get splitters of their own in
:mod:`lmassist.docindex.formats`; :mod:`lmassist.docindex.passages` picks one by file name and
sizes blocks into passages.

Two users: the folder index (retrieval wants passages that keep a heading with its text, and
``path:line`` citations) and, later, translate/summarize, which need the exact source back and must
know which blocks to leave untouched (:attr:`Block.verbatim`). For the second,
``markdown_blocks(text, keep_blank=True)`` covers every line, so ``"".join(b.text ...)`` is the input
(plain text too: without a heading, list or fence it comes back as paragraphs and blank runs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
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
    lines = source_lines(text)
    front = front_matter_end(lines)
    # The front matter's lines are parsed as blank ones, so the parser's line numbers stay the file's.
    tokens = _parser().parse("\n" * front + "".join(lines[front:]))
    blocks: list[Block] = [Block("front_matter", 1, front, "".join(lines[:front]))] if front else []
    stack: list[tuple[int, str]] = []  # (level, title) of the headings we are under
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.nesting == -1 or tok.map is None:
            continue
        start, end = tok.map[0] + 1, tok.map[1]
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            title = _plain(tokens[i + 1].content)
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            blocks.append(_block(lines, "heading", start, end, stack))
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            blocks.extend(_list_items(tokens, i, lines, stack))
        elif tok.type in _TOP_KINDS:
            blocks.append(_block(lines, _TOP_KINDS[tok.type], start, end, stack))
    if keep_blank:
        return fill_gaps(blocks, lines)
    return [b for b in fill_gaps(blocks, lines) if b.kind != "blank"]


def front_matter_end(lines: list[str]) -> int:
    """The number of lines of YAML front matter (``---`` … ``---`` or ``...`` at the very top, as
    Jekyll, Hugo and Obsidian notes have), 0 when there is none. CommonMark alone reads it as a
    rule followed by a setext heading, and a translator would translate its keys."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for i, line in enumerate(lines[1:200], 2):
        if line.rstrip() in ("---", "..."):
            return i
    return 0


def _list_items(tokens: list, i: int, lines: list[str], stack: list[tuple[int, str]]) -> list[Block]:
    """One block per item of the list whose opening token is ``tokens[i]``."""
    items: list[Block] = []
    for tok in tokens[i + 1:]:
        if tok.level == 0:  # the list's closing token
            break
        if tok.type == "list_item_open" and tok.level == 1 and tok.map is not None:
            items.append(_block(lines, "list_item", tok.map[0] + 1, tok.map[1], stack))
    return items


def _block(lines: list[str], kind: BlockKind, start: int, end: int, stack: list[tuple[int, str]]) -> Block:
    end = trim_blank_tail(lines, start, min(end, len(lines)))
    return Block(kind, start, end, "".join(lines[start - 1:end]), tuple(t for _, t in stack))
