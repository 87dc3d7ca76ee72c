"""Which splitter a file gets, and blocks sized into passages for retrieval.

Kept apart from the splitters so that a task can take exact blocks (:mod:`lmassist.docindex.blocks`)
without the retrieval sizing, and the index can take passages without knowing the formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import PurePath

from lmassist.docindex import formats
from lmassist.docindex.blocks import Block, BlockKind, markdown_blocks

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mkdn", ".mdx"})
RST_SUFFIXES = frozenset({".rst", ".rest"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
CODE_SUFFIXES = frozenset(
    ".py .pyi .js .mjs .cjs .ts .tsx .jsx .go .rs .c .h .cc .cpp .cxx .hpp .hh .java .kt .kts .scala .rb "
    ".php .pl .pm .sh .bash .zsh .fish .ps1 .lua .swift .m .mm .r .jl .cs .fs .ex .exs .erl .hs .ml .clj "
    ".sql .toml .yaml .yml .json .ini .cfg .conf .xml .css .scss .vue .svelte .dart .zig .nim .tf .proto "
    ".mk .cmake .gradle".split()
)
CODE_NAMES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "justfile", "rakefile", "gemfile"})


def format_of(name: str) -> str:
    """``"markdown"``, ``"rst"``, ``"html"``, ``"code"`` or ``"text"``, from a file name."""
    p = PurePath(name)
    suffix = p.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in RST_SUFFIXES:
        return "rst"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in CODE_SUFFIXES or p.name.lower() in CODE_NAMES:
        return "code"
    return "text"


def blocks_for(name: str, text: str) -> list[Block]:
    """The non-blank blocks of ``text``, split the way its file name's format calls for."""
    fmt = format_of(name)
    if fmt == "markdown":
        return markdown_blocks(text)
    return {"rst": formats.rst_blocks, "html": formats.html_blocks, "code": formats.code_blocks,
            "text": formats.text_blocks}[fmt](text)


# ---------------------------------------------------------------- sizing for retrieval

def approx_tokens(text: str) -> int:
    """A tokenizer-free size: about four characters a token, as for English with common BPE
    vocabularies. Indexing must not load a model; a task that feeds a model passes its own counter."""
    return (len(text) + 3) // 4


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def pack(blocks: Iterable[Block], max_tokens: int = 200, min_tokens: int = 40,
         count_tokens: Callable[[str], int] = approx_tokens) -> list[Block]:
    """Passages for retrieval: blocks over ``max_tokens`` split at line (then sentence, then word)
    boundaries, and small neighbours in the same section merged while they fit.

    A heading alone, or a one-line list item, is too little to rank or to answer from; a whole
    chapter with no blank line is too much for a small model's context. Code is never merged with
    prose, so a passage's ``verbatim`` still says what it holds.
    """
    pieces = [p for b in blocks if b.kind != "blank" for p in split_block(b, max_tokens, count_tokens)]
    out: list[Block] = []
    sizes: list[int] = []
    for b in pieces:
        n = count_tokens(b.text)
        if out and _mergeable(out[-1], b) and (sizes[-1] < min_tokens or n < min_tokens) \
                and sizes[-1] + n <= max_tokens:
            out[-1] = _merge(out[-1], b)
            sizes[-1] += n
        else:
            out.append(b)
            sizes.append(n)
    return out


def _mergeable(a: Block, b: Block) -> bool:
    """Same section, or ``a`` is only headings and ``b`` opens the section they name."""
    if (a.kind == "code") != (b.kind == "code"):
        return False
    if a.kind == "heading":
        return b.heading_path[:len(a.heading_path)] == a.heading_path
    return a.heading_path == b.heading_path


def _merge(a: Block, b: Block) -> Block:
    kind: BlockKind = b.kind if a.kind == "heading" else a.kind if a.kind == b.kind else "text"
    return Block(kind, a.start_line, max(a.end_line, b.end_line), a.text.rstrip("\n") + "\n\n" + b.text,
                 b.heading_path)


def split_block(block: Block, max_tokens: int, count_tokens: Callable[[str], int] = approx_tokens) -> list[Block]:
    """``block`` cut into consecutive pieces of at most about ``max_tokens``, each with the line
    range it came from."""
    if count_tokens(block.text) <= max_tokens:
        return [block]
    lines = block.text.splitlines(keepends=True)
    exact = len(lines) == block.end_line - block.start_line + 1
    out: list[Block] = []
    buf: list[str] = []
    first = used = 0
    for idx, line in enumerate(lines):
        n = count_tokens(line)  # summed per line: counting the growing piece again would be quadratic
        if buf and used + n > max_tokens:
            out.append(_piece(block, "".join(buf), first, idx - 1, exact))
            buf, used = [], 0
        if not buf:
            first = idx
        if n > max_tokens:
            out.extend(_piece(block, part, idx, idx, exact) for part in _split_line(line, max_tokens, count_tokens))
            continue
        buf.append(line)
        used += n
    if buf:
        out.append(_piece(block, "".join(buf), first, len(lines) - 1, exact))
    return [p for p in out if p.text.strip()]


def _piece(block: Block, text: str, first: int, last: int, exact: bool) -> Block:
    if not exact:
        return replace(block, text=text)
    return replace(block, text=text, start_line=block.start_line + first, end_line=block.start_line + last)


def _split_line(line: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """A line too long for one passage, in pieces at sentence ends, else between words, and a
    "word" longer than a passage (a minified file, a base64 blob) by characters."""
    units = _SENTENCE_END.split(line)
    if len(units) == 1:
        units = line.split(" ")
    parts: list[str] = []
    buf = ""
    for unit in (piece for u in units for piece in _cut(u, max_tokens, count_tokens)):
        candidate = f"{buf} {unit}" if buf else unit
        if buf and count_tokens(candidate) > max_tokens:
            parts.append(buf)
            candidate = unit
        buf = candidate
    if buf:
        parts.append(buf)
    return parts


def _cut(unit: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    n = count_tokens(unit)
    if n <= max_tokens:
        return [unit]
    step = max(1, len(unit) * max_tokens // n)
    return [unit[i:i + step] for i in range(0, len(unit), step)]
