"""Answers from an indexed folder, with ``path:line`` citations, or an honest "not in the notes".

Two ways in, one retrieval (:meth:`lmassist.docindex.index.DocIndex.search`, BM25 over the folder's
passages):

* :func:`answer_from_docs` (``qa --docs``, ``eval-task docs-qa``) answers like ``qa --context``
  does, by extracting a span the model ranks highest from the retrieved passages, with the same
  abstention rules, and cites the line the answer is on. A small model copies a span far more
  reliably than it writes an answer, and a span can be traced to its line.
* :func:`docs_turn` (``ask --docs``, ``/docs`` in the chat app) builds the messages for a streamed
  chat reply with the passages in them, and says to abstain without generating when retrieval
  finds nothing relevant, so a conversation is never answered from no evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass, field
from pathlib import Path

from lmassist.docindex.index import DocIndex
from lmassist.docindex.records import Hit
from lmassist.generation import CancelToken, Message, Model
from lmassist.tasks.qa_answerer import QuestionAnswerer
from lmassist.tasks.qa_context import Extraction, missing_names

NO_ANSWER = "The notes do not contain the answer."
# Rank a folder's passages and sentences by Porter stems only, not stems plus whole words as qa
# --context does: on folder-qa-dev's tuning half stems alone abstained on 0.46 of unanswerable
# questions against 0.36, at the same F1 (0.34); SQuAD's tuning half preferred the sum.
FOLDER_WHOLE_WORDS = False
TOP_K = 3  # passages retrieved and cited: three of the index's ~300-token passages fit qa's context budget
# Passages an extracted answer is read from, best first. Spans cut from the second and third
# passages are mostly distractors a 135M model falls for (see docs/benchmarks.md).
READ_K = 1
SYSTEM = (
    "Answer the user's question using only the notes below. Answer briefly and say which note you used "
    f"by its [number]. If the notes do not say, answer exactly: {NO_ANSWER}"
)


@dataclass(frozen=True)
class Citation:
    """Where an answer (or a passage it came from) is: ``path`` relative to the folder, 1-based lines."""

    path: str
    line: int
    end_line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"

    @classmethod
    def of(cls, hit: Hit) -> Citation:
        return cls(hit.path, hit.start_line, hit.end_line, hit.text)


@dataclass
class DocsAnswer:
    """``text`` is the answer or :data:`NO_ANSWER`; ``citations`` the answer's line first, then the
    other passages it was chosen from; ``passages`` everything retrieved (for retrieval metrics)."""

    text: str
    citations: list[Citation]
    abstained: bool
    passages: list[Citation] = field(default_factory=list)


@dataclass
class DocsTurn:
    """What a chat turn over a folder needs: ``abstain`` set means do not generate, print it."""

    messages: list[Message]
    citations: list[Citation]
    abstain: str | None = None


def retrieve(collection: str, question: str, k: int = TOP_K, index: DocIndex | Path | str | None = None) -> list[Hit]:
    """The ``k`` passages of ``collection`` BM25 ranks highest (the index at ``index``, or the
    default one); a one-line error when the collection does not exist or the index is damaged."""
    if isinstance(index, DocIndex):
        return index.search(collection, question, k)
    with DocIndex(index) as opened:
        return opened.search(collection, question, k)


def answer_from_docs(model: Model, collection: str, question: str, cancel: CancelToken | None = None,
                     index: DocIndex | Path | str | None = None, k: int = TOP_K) -> DocsAnswer:
    """Answer ``question`` from the passages of ``collection``, citing the answer's ``path:line``."""
    hits = retrieve(collection, question, k, index)
    qa = QuestionAnswerer(model, method="spans" if model.supports_score else "generate", top_k=k)
    if not hits or qa.method == "spans":
        return decide(qa, question, read(qa, question, hits, cancel))
    out = qa.answer(question, _documents(hits), cancel)
    return _answered(out["answer"], out["answerable"] is False or _says_no(out["answer"]), hits,
                     [p["source"] for p in out["passages"]])


@dataclass
class Reading:
    """What answering read: the passages retrieved, the order qa kept them in, the scored spans."""

    hits: list[Hit]
    order: list[str]
    extraction: Extraction | None


def read(qa: QuestionAnswerer, question: str, hits: list[Hit], cancel: CancelToken | None = None) -> Reading:
    """Score the candidate spans of the retrieved passages once (the model's part of the work)."""
    if not hits:
        return Reading(hits, [], None)
    qa = copy(qa)
    qa.whole_words = FOLDER_WHOLE_WORDS
    kept = qa.passages(question, _documents(hits[:READ_K]), cancel)
    parts = [p.text.strip() for p in kept]
    return Reading(hits, [p.source for p in kept], qa.extract(question, "\n".join(parts), parts))


def decide(qa: QuestionAnswerer, question: str, reading: Reading) -> DocsAnswer:
    """The answer (or the abstention) under ``qa``'s rule and settings; apart from :func:`read` so
    that ``eval-task docs-qa`` can compare settings on one reading."""
    if reading.extraction is None:
        return DocsAnswer(NO_ANSWER, [], True, [])
    out = qa.decide(question, reading.extraction)
    return _answered(out["answer"], not out["answerable"], reading.hits, reading.order)


def _documents(hits: Sequence[Hit]) -> list[tuple[str, str]]:
    """The passages as qa's documents: named by their rank, each under a title line (:func:`_title`)."""
    return [(str(i), f"# {_title(h)}\n\n{h.text}") for i, h in enumerate(hits)]


def _answered(answer: str, abstained: bool, hits: list[Hit], order: Sequence[str]) -> DocsAnswer:
    passages = [Citation.of(h) for h in hits]
    if abstained:
        return DocsAnswer(NO_ANSWER, [], True, passages)
    answer = answer.strip()
    first = _answer_citation(answer, hits, order)
    rest = [c for c in passages if c.path != first.path or c.line > first.line or c.end_line < first.line]
    return DocsAnswer(answer, [first, *rest], False, passages)


def _title(hit: Hit) -> str:
    """A heading line for a passage read out of its file: the file's name in words and the
    headings it sits under, which say what the passage is about ("chess club minutes: AGM")."""
    name = re.sub(r"[-_.]+", " ", Path(hit.path).stem).strip()
    return f"{name}: {hit.heading}" if hit.heading else name


def _says_no(text: str) -> bool:
    """Free generation saying the context lacks the answer (the spans method decides it itself)."""
    return bool(re.search(r"\b(does not|doesn't|do not|don't) (contain|say|mention)|\bunknown\b", text, re.I))


def _answer_citation(answer: str, hits: Sequence[Hit], order: Sequence[str]) -> Citation:
    """The line the answer is on, in the first passage (in the order qa used them) that holds it;
    the best passage's first line when no passage holds it word for word (a generated answer)."""
    pattern = re.compile(r"\s+".join(re.escape(w) for w in answer.split()), re.I) if answer.split() else None
    ranked = [int(s) for s in dict.fromkeys(order) if s.isdigit() and int(s) < len(hits)]
    for i in ranked + [i for i in range(len(hits)) if i not in ranked]:
        found = pattern.search(hits[i].text) if pattern else None
        if found:
            hit = hits[i]
            line = hit.start_line + hit.text.count("\n", 0, found.start())
            text = hit.text.splitlines()[line - hit.start_line].strip()
            return Citation(hit.path, line, line, text)
    return Citation.of(hits[ranked[0] if ranked else 0])


def docs_turn(model: Model, collection: str, question: str, history: Sequence[Message] = (),
              index: DocIndex | Path | str | None = None, k: int = TOP_K) -> DocsTurn:
    """The messages for a chat reply grounded in ``collection``'s passages, and their citations.

    Abstains (``abstain`` set, no generation) when nothing in the folder matches the question, or a
    name or number the question depends on appears in none of the passages ("When is Priya's
    birthday?" over notes that never mention Priya): a chat model handed unrelated passages
    answers anyway. Passages are kept while they fit half the model's context.
    """
    hits = retrieve(collection, question, k, index)
    if not hits or missing_names(question, "\n".join(h.text for h in hits)):
        return DocsTurn([], [], NO_ANSWER)
    budget, used, kept = max(256, model.context_length // 2), 0, []
    for h in hits:
        n = model.count_tokens(h.text)
        if kept and used + n > budget:
            break
        kept.append(h)
        used += n
    notes = "\n\n".join(f"[{i}] {h.citation}\n{h.text.strip()}" for i, h in enumerate(kept, 1))
    messages = [Message("system", f"{SYSTEM}\n\nNotes:\n\n{notes}"), *history, Message("user", question)]
    return DocsTurn(messages, [Citation.of(h) for h in kept], None)
