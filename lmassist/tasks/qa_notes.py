"""A note's sentences and the heading each sits under, for question answering over everyday notes.

SQuAD paragraphs are one line of prose; notes are not. Flattened, the heading "# Budget committee"
and the attendance line under it read as one sentence holding "budget" and four names, and that
sentence outranked "Councillor David Okafor will bring the budget." And a note says what it is
about once, in a heading ("Chess club AGM"), not in every sentence ("Yusuf Demir was re-elected
chair."), so a question naming the topic matched no single sentence. Here a line is a unit of
its own where a note makes it one, and every sentence carries the heading above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmassist.tasks.chunking import split_sentences

# A line that starts a unit of its own: a heading, a list item, a quote, a table row, a field
# ("Date: ...", ":Chair: ...") or a bold label ("**Ana**: ...").
_LINE_START = re.compile(r"\s*(#{1,6}\s|[-*+>|]\s|\d{1,3}[.)]\s|:\w[^:]*:|\*\*|[A-Z][\w ./'-]{0,30}:\s)")
_RULE_LINE = re.compile(r"\s*([=\-~^*#`_+]\s*){3,}$")  # a setext or reST underline, a fence, a rule
_MARKER = re.compile(r"^\s*(#{1,6}\s+|[-*+>]\s+(\[[ xX]\]\s+)?|\d{1,3}[.)]\s+)")
_SUBJECT = re.compile(r"^(subject|title|re):\s*", re.I)
HEADING_WORDS = 8  # a line this short, ending in no punctuation, standing alone, names what follows


@dataclass(frozen=True)
class NoteSentence:
    text: str
    heading: str  # the title above it and the section heading under that ("" in plain prose)


def _units(text: str) -> list[tuple[str, str]]:
    """(unit, underline) pairs: a unit is a line standing alone, or wrapped prose joined up;
    ``underline`` is the rule line under it ("" for none)."""
    units: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _RULE_LINE.match(line):
            units.append((current, line))
            current = ""
            continue
        if current and (current[-1] in ".!?:" or current.isupper() or _LINE_START.match(line)
                        or _MARKER.match(current)):
            units.append((current, ""))
            current = ""
        current = f"{current} {line}" if current else line
    units.append((current, ""))
    return [(u, rule) for u, rule in units if u.strip()]


def _heading_level(unit: str, clean: str, underline: str) -> int:
    """1 for a title (``#``, ``===`` underline, a subject line), 2 for another heading, 0 for text."""
    if unit.startswith("# ") or underline.startswith("=") or _SUBJECT.match(clean):
        return 1
    if underline or unit.startswith("#"):
        return 2
    short = len(clean.split()) <= HEADING_WORDS and clean[-1] not in ".!?,;:" and not _LINE_START.match(clean)
    return 2 if short and clean[:1].isupper() else 0


def note_sentences(text: str) -> list[NoteSentence]:
    """The sentences of a context, each with the heading above it.

    A line starts a new sentence after a heading, a line ending a sentence (``.!?:``) or an
    all-capitals line, or when it is itself a heading, list item, field or rule; other lines are
    wrapped prose and join the line before. List and heading markers are dropped. A heading is a
    marked (``#``), underlined (setext, reST) or subject line, or a short line with no closing
    punctuation standing alone ("Next meeting", "PARENT-TEACHER ASSOCIATION — MINUTES").
    """
    out: list[NoteSentence] = []
    title = section = ""
    for unit, underline in _units(text):
        clean = " ".join(_MARKER.sub("", unit).split())
        if not clean:
            continue
        heading = f"{title} — {section}" if title and section else title or section
        for sentence in split_sentences(clean):
            out.append(NoteSentence(sentence, heading))
        level = _heading_level(unit.lstrip(), clean, underline)
        if level == 1 or (level == 2 and not title):
            title, section = _SUBJECT.sub("", clean), ""
        elif level == 2:
            section = clean
    return out
