"""Full-text search over the history: what a user types, made into a safe FTS5 query."""

from __future__ import annotations


def fts_query(text: str) -> str:
    """Turn what a user typed into a safe FTS5 query: every word quoted, all of them required.

    Quoting means ``"``, ``(``, ``AND``, ``NEAR`` and ``-`` are searched as text, not parsed as
    syntax. A trailing ``*`` keeps its meaning (a prefix search). Returns ``""`` when nothing
    searchable is left (only punctuation).
    """
    terms = []
    for raw in text.split():
        word = raw.rstrip("*")
        if not any(ch.isalnum() for ch in word):
            continue
        quoted = '"' + word.replace('"', '""') + '"'
        terms.append(quoted + ("*" if word != raw else ""))
    return " ".join(terms)



SEARCH_SQL = (
    "SELECT m.conversation_id, c.title, m.id, m.role, m.created, "
    "snippet(messages_fts, 0, ?, ?, '…', 16), bm25(messages_fts) AS score "
    "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE messages_fts MATCH ? ORDER BY score, m.id DESC LIMIT ?"
)
