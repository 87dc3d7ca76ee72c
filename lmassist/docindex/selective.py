"""Which of a question's words are worth searching for in one big collection's full-text index.

A query costs what its terms match: FTS5 reads every passage a term is in and, for BM25, that
passage's length. A word in more than half the passages has an IDF of (almost) zero (FTS5 floors
it at 1e-6), and one in a tenth of them weighs about a third of a rare word's; yet on a 100 MB folder
such words matched tens of thousands of passages and most of a query's time. They are dropped from
the query (unless nothing else is left). Measured with the dev questions on a generated 100 MB
folder (``lmassist bench docs``): p95 search time roughly halved, the same first passage for 184 of
190 questions and the same top three for 180. Words are compared as the index stores them (Porter
stems, accents folded), looked up in FTS5's own vocabulary, so no stemmer is duplicated here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lmassist.docindex.ranking import TOKENIZER

COMMON = 0.1  # a term in more than this share of the passages is left out (0.5: none of its IDF is lost)


def stems(conn: sqlite3.Connection, words: Sequence[str]) -> list[str]:
    """Each word as the index's tokenizer stores it ("" for a word it drops), through a scratch
    FTS5 table in the connection's temporary schema."""
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5(w, tokenize='{TOKENIZER}')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_stems USING fts5vocab(temp, 'query_words', 'instance')")
    conn.execute("DELETE FROM temp.query_words")
    conn.executemany("INSERT INTO temp.query_words(rowid, w) VALUES (?, ?)", enumerate(words))
    found = dict(conn.execute("SELECT doc, term FROM temp.query_stems"))
    conn.execute("DELETE FROM temp.query_words")
    return [found.get(i, "") for i in range(len(words))]


def selective_terms(conn: sqlite3.Connection, table: str, words: Sequence[str], passages: int) -> list[str]:
    """``words`` less those in more than :data:`COMMON` of the ``passages`` of FTS5 ``table`` and
    those in none; when that leaves nothing, the rarest word that matches anything (so a question
    made only of common words still finds passages)."""
    if not words:
        return []
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_vocab USING fts5vocab(main, '{table}', 'row')")
    keys = stems(conn, words)
    df: dict[str, int] = {}
    for key in set(keys):
        row = conn.execute(f"SELECT doc FROM temp.{table}_vocab WHERE term = ?", (key,)).fetchone() if key else None
        df[key] = row[0] if row else 0
    kept = [w for w, key in zip(words, keys, strict=True) if 0 < df[key] <= COMMON * passages]
    if kept:
        return kept
    matching = [(df[key], w) for w, key in zip(words, keys, strict=True) if df[key] > 0]
    return [min(matching)[1]] if matching else []
