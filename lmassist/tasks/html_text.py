"""The prose of an HTML page cut out of its markup in place, for a task that rewrites text (translate).

A rewritten page must come back byte for byte apart from its prose: tags and their attributes,
comments, the doctype, and everything inside ``script``, ``style``, ``pre``, ``code`` and the like.
The standard library's parser reports text already decoded and without its extent in the source,
so the page is scanned here instead: every piece is a slice of the source, and joining the pieces
gives the page back exactly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lmassist.tasks.rewrite import has_words

# Elements whose content is not prose: code, and content that is not text at all. A page's visible
# text elsewhere (including <title>) is prose.
_NOT_PROSE = frozenset({"code", "kbd", "math", "noscript", "pre", "samp", "script", "style", "svg",
                        "template", "textarea", "var"})
# Raw-text elements: their content holds no tags ("a<b" in a script is not a tag), so the scan
# jumps to the closing tag.
_RAW_TEXT = frozenset({"script", "style"})
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)"                                     # a comment (to the end, if never closed)
    r"|<!\[CDATA\[.*?(?:\]\]>|\Z)"
    r"|<[!?][^>]*>?"                                         # the doctype, a processing instruction
    r"|<(/?)([A-Za-z][\w:.-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>?",  # a tag; a quoted value may hold ">"
    re.S)


@dataclass(frozen=True)
class Piece:
    """A slice of the page: ``prose`` to rewrite, or markup and code to copy."""

    text: str
    prose: bool


def html_pieces(page: str) -> Iterator[Piece]:
    """The page as consecutive slices; ``"".join(p.text for p in html_pieces(page)) == page``."""
    pos, hidden = 0, 0  # hidden: how many non-prose elements are open around pos
    while True:
        m = _MARKUP.search(page, pos)
        if m is None:
            break
        if m.start() > pos:
            text = page[pos:m.start()]
            yield Piece(text, not hidden and has_words(text))
        end = m.end()
        closing, name = m.group(1), (m.group(2) or "").lower()
        self_closing = (m.group(3) or "").rstrip().endswith("/")
        if name in _RAW_TEXT and not closing and not self_closing:
            close = re.compile(rf"</{name}\s*>", re.I).search(page, end)
            end = close.end() if close else len(page)  # the script and its closing tag, copied whole
        elif name in _NOT_PROSE and not self_closing:
            hidden = max(0, hidden - 1) if closing else hidden + 1
        yield Piece(page[m.start():end], False)
        pos = end
    if pos < len(page):
        text = page[pos:]
        yield Piece(text, not hidden and has_words(text))


def rewrite_prose(text: str, rewrite: Callable[[str], str]) -> str:
    """One prose slice rewritten: its entities decoded for the model, its whitespace (which HTML
    shows as one space) folded, and the reply escaped again; the slice's outer whitespace kept."""
    lead, body, trail = re.fullmatch(r"(\s*)(.*?)(\s*)", text, re.S).groups()  # type: ignore[union-attr]
    if not body:
        return text
    return lead + html.escape(rewrite(" ".join(html.unescape(body).split())), quote=False) + trail
