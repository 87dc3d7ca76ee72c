"""Rank a handful of texts in memory for a question with SQLite FTS5's BM25, the folder index's ranking.

Question answering ranks a context's passages and then their sentences, and attachments that do
not fit a model's context are cut down the same way. rank-bm25 did this before; its IDF is zero
for a term found in half the texts or more, so over three sentences every score was often zero
and the order was the input's (rank_bm25#39, #43), and it pulled numpy into the core install.
FTS5 floors such an IDF at a tiny positive value, so a text holding the question's words still
outranks one that does not, and the same tokenizer as the index (Porter stems, accents folded)
matches "brings" with "bring".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lmassist.docindex.query import match_expression

TOKENIZER = "porter unicode61 remove_diacritics 2"  # the folder index's (index.py, _create_fts)
UNSTEMMED = "unicode61 remove_diacritics 2"


def score_texts(texts: Sequence[str], query: str, stem: bool = True) -> list[float]:
    """BM25 of each text for ``query`` (higher is better; 0.0 for a text matching no query word).

    ``stem=False`` matches whole words only (no Porter stems): qa adds the two scores so that a
    sentence with the question's own words outranks one sharing only a stem.
    """
    scores = [0.0] * len(texts)
    expr = match_expression(query)
    if not expr or not texts:
        return scores
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{TOKENIZER if stem else UNSTEMMED}')")
        conn.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", enumerate(texts))
        for rowid, score in conn.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ?", (expr,)):
            scores[rowid] = -score  # FTS5's bm25() is lower-is-better
    finally:
        conn.close()
    return scores


def rank_texts(texts: Sequence[str], query: str, k: int) -> list[int]:
    """The indices of the ``k`` texts that best match ``query``, best first.

    Texts matching a query word come first by BM25; when fewer than ``k`` match, the rest follow
    in their original order (a caller asking for three passages gets three when there are three),
    and ties keep the original order too. A query with no words keeps the original order.
    """
    if k <= 0:
        return []
    return best_first(score_texts(texts, query), k)


def best_first(scores: Sequence[float], k: int) -> list[int]:
    """The indices of the ``k`` highest scores, ties in their original order."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[: max(0, k)]
