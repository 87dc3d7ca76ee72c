"""Block splitters for the formats that are not Markdown: reStructuredText, HTML, source code, text.

Each returns the non-blank :class:`~lmassist.docindex.blocks.Block` s of a document in order, with
1-based line ranges, so a passage from any of them can be cited as ``path:line``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lmassist.docindex.blocks import Block, BlockKind, source_lines, trim_blank_tail


def text_blocks(text: str) -> list[Block]:
    """Paragraphs: runs of non-blank lines."""
    lines = source_lines(text)
    return [Block("paragraph", s, e, "".join(lines[s - 1:e])) for s, e in _runs(lines)]


def _runs(lines: list[str]) -> list[tuple[int, int]]:
    """1-based ``(first, last)`` of each run of non-blank lines."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i, line in enumerate(lines, 1):
        if line.strip():
            start = start or i
        elif start:
            runs.append((start, i - 1))
            start = 0
    if start:
        runs.append((start, len(lines)))
    return runs


# ---------------------------------------------------------------- reStructuredText

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")  # a line of one repeated punctuation character
_CODE_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(code|code-block|sourcecode|literalinclude)::")


def rst_blocks(text: str) -> list[Block]:
    """reST blocks: section titles (underlined, optionally overlined; levels in order of first use,
    as docutils assigns them), paragraphs, and literal blocks (after ``::`` or a code directive)."""
    lines = source_lines(text)
    styles: list[tuple[str, bool]] = []
    stack: list[tuple[int, str]] = []
    blocks: list[Block] = []
    i, n = 0, len(lines)
    literal_next = False
    while i < n:
        line = lines[i].rstrip("\r\n")
        if not line.strip():
            i += 1
            continue
        title = _rst_title(lines, i)
        if title is not None:
            first, last, name, style = title
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, name)]
            blocks.append(_rst_block(lines, "heading", first, last, stack))
            i, literal_next = last, False
            continue
        m = _CODE_DIRECTIVE.match(line)
        if (literal_next and line[:1].isspace()) or m:
            indent = len(m.group(1)) if m else 0
            end = _indented_end(lines, i + 1, indent)
            blocks.append(_rst_block(lines, "code", i + 1, end, stack))
            i, literal_next = end, False
            continue
        end = i + 1
        while end < n and lines[end].strip() and _rst_title(lines, end) is None:
            end += 1
        blocks.append(_rst_block(lines, "paragraph", i + 1, end, stack))
        literal_next = lines[end - 1].rstrip().endswith("::")
        i = end
    return blocks


def _rst_title(lines: list[str], i: int) -> tuple[int, int, str, tuple[str, bool]] | None:
    """``(first, last, title, style)`` (1-based lines) when a section title starts at line ``i``."""
    at = [lines[j].rstrip("\r\n") if j < len(lines) else "" for j in (i, i + 1, i + 2)]
    over = _ADORNMENT.match(at[0])
    if over and at[1].strip() and _ADORNMENT.match(at[2]) and at[2].strip() == at[0].strip():
        return i + 1, i + 3, at[1].strip(), (at[0][0], True)
    under = _ADORNMENT.match(at[1])
    if at[0].strip() and not at[0][0].isspace() and not over and under \
            and len(at[1].rstrip()) >= len(at[0].rstrip()) and len(at[1].strip()) >= 2:
        return i + 1, i + 2, at[0].strip(), (at[1][0], False)
    return None


def _indented_end(lines: list[str], start: int, indent: int) -> int:
    """The last line (1-based) of the block indented deeper than ``indent`` that follows line
    ``start`` (blank lines inside it included, trailing ones not)."""
    j = start
    while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
        j += 1
    return trim_blank_tail(lines, start, j)


def _rst_block(lines: list[str], kind: BlockKind, first: int, last: int, stack: list[tuple[int, str]]) -> Block:
    return Block(kind, first, last, "".join(lines[first - 1:last]), tuple(t for _, t in stack))


# ---------------------------------------------------------------- source code

_DEFINITION = re.compile(
    r"^(?:(?:export|pub(?:\([\w:]+\))?|public|private|protected|static|async|abstract|final|default|inline)\s+)*"
    r"(?:def|class|function|fn|func|struct|enum|trait|impl|interface|type|module|object|sub|proc)\s+"
    r"([A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*)")


def code_blocks(text: str) -> list[Block]:
    """Source code at top-level boundaries: a new block starts after a blank line where the next
    line begins at column 0, so a function with blank lines inside stays whole. A block that opens
    with a definition (``def``, ``class``, ``fn``, ``function``…) carries its name as its heading."""
    lines = source_lines(text)
    blocks: list[Block] = []
    start = None
    for i, line in enumerate(lines):
        top = line.strip() and not line[0].isspace() and not line.lstrip().startswith(("}", ")", "]", "end"))
        if start is None and line.strip():
            start = i
        elif start is not None and top and i > 0 and not lines[i - 1].strip():
            blocks.append(_code_block(lines, start, i))
            start = i
    if start is not None:
        blocks.append(_code_block(lines, start, len(lines)))
    return blocks


def _code_block(lines: list[str], start: int, stop: int) -> Block:
    end = trim_blank_tail(lines, start + 1, stop)
    body = lines[start:end]
    name = next((m.group(1) for m in map(_DEFINITION.match, body) if m), None)
    return Block("code", start + 1, end, "".join(body), (name,) if name else ())


# ---------------------------------------------------------------- HTML

_BLOCK_TAGS = frozenset(
    "p div li dt dd pre blockquote table tr section article header footer nav aside main ul ol dl "
    "figure figcaption form h1 h2 h3 h4 h5 h6 br hr title".split())
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "svg"})


class _Extractor(HTMLParser):
    """Visible text in blocks, split at block-level tags; headings kept as headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.stack: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.first = self.last = 0
        self.kind: BlockKind = "paragraph"
        self.level = 1
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.flush()
            self.level = int(tag[1]) if re.fullmatch(r"h[1-6]", tag) else self.level
            self.kind = "heading" if re.fullmatch(r"h[1-6]", tag) else "code" if tag == "pre" else \
                "list_item" if tag == "li" else "paragraph"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.flush()
            self.kind = "paragraph"

    def handle_data(self, data: str) -> None:
        if self.skip or not data.strip():
            return
        line = self.getpos()[0]
        lead = len(data) - len(data.lstrip("\r\n \t"))
        self.first = self.first or line + data[:lead].count("\n")
        self.last = line + data.rstrip().count("\n")
        self.parts.append(data)

    def flush(self) -> None:
        if not self.parts:
            return
        raw = "".join(self.parts)
        text = raw.strip("\n") if self.kind == "code" else " ".join(raw.split())
        if self.kind == "heading":
            self.stack = [(lv, t) for lv, t in self.stack if lv < self.level] + [(self.level, text)]
        path = tuple(t for _, t in self.stack)
        self.blocks.append(Block(self.kind, self.first, max(self.first, self.last), text + "\n", path))
        self.parts, self.first, self.last = [], 0, 0


def html_blocks(text: str) -> list[Block]:
    """Visible text of an HTML page in blocks (script and style left out), headings kept.

    The standard library's parser, so a page in the folder costs no dependency; it never raises on
    broken markup, which is what pages in the wild are.
    """
    parser = _Extractor()
    parser.feed(text)
    parser.close()
    parser.flush()
    return parser.blocks
