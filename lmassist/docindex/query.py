"""A question in free text turned into an FTS5 MATCH expression that can never be a syntax error.

The history search (``store.fts_query``) wants every word (a user looking for a conversation types
the words it had); a question over a folder wants *any* of its content words, ranked by BM25, since
the passage that answers "Who brings the budget?" need not say "who" or "brings".
"""

from __future__ import annotations

import re

# Words that say what kind of answer is wanted, not what it is about; matching them ranks every
# passage alike. "and", "or", "not" and "near" are here too: FTS5 would read them as operators.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself near no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom whose why will
with would you your yours yourself yourselves tell give name list describe explain one
""".split())

MAX_TERMS = 32  # a pasted page as a "question" must not become a query that scans the whole index

_WORD = re.compile(r"[^\W_]+")  # letters and digits: "_" alone would be an empty FTS5 phrase


def query_terms(text: str) -> list[str]:
    """The distinct lower-case words of ``text`` worth searching for, in order; the stop words only
    when nothing else is left ("Who is it?" still searches). Single letters go too: the "s" of
    "Norman's" matched every possessive in a folder, and a query costs what its terms match."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())] or words
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def match_expression(text: str) -> str:
    """``"w1" OR "w2" OR …`` for the terms of ``text``; ``""`` when it has no words at all.

    Every term is a quoted string made of word characters only, so quotes, ``AND``/``OR``/``NEAR``,
    ``*``, ``-``, ``:``, ``^`` and parentheses in the question are searched as words or dropped,
    never parsed as FTS5 syntax.
    """
    return " OR ".join(f'"{w}"' for w in query_terms(text))
