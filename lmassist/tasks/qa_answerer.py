"""The question answerer behind ``qa``, ``qa --docs`` and ``eval-task``: over context passages it
extracts an answer span ranked by the model's likelihood and decides whether to answer at all; with
no context, or a model that cannot score, it generates freely.

Free generation from a 135M model answers badly: asked "Who will bring the budget?" over a note
that says "Alice will bring the budget", it repeats the note. So with context and a backend that
can score, we *extract*: candidate spans are cut from the sentences BM25 ranks highest, filtered by
the question's type (see :mod:`lmassist.tasks.qa_context`), and ranked by the model's likelihood
of each span as the answer, after a few-shot prompt, over the sentence it was cut from. Whether to
answer is decided by one of the rules below, measured with ``lmassist bench qa``.
"""

from __future__ import annotations

from typing import Any

from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Message, Model
from lmassist.tasks import prompts
from lmassist.tasks.chunking import chunk_text, paragraphs
from lmassist.tasks.qa_context import (
    WHOLE_WORDS_TOO,
    Extraction,
    Passage,
    candidate_spans,
    content_words,
    missing_names,
    missing_words,
    question_overlap,
    retrieve,
    whole_name,
    words_elsewhere,
)
from lmassist.tasks.qa_notes import note_sentences

NO_ANSWER = "The context does not contain the answer."
# When to say the context lacks the answer (--rule). Every rule but margin abstains when a name or
# number of the question is missing from the context (unanswerable questions are often a plausible
# question with one detail the text lacks), and otherwise:
#   elsewhere (default): ELSEWHERE_MIN or more of the question's words occur in the context outside
#     the best span's sentence, or that sentence holds under OVERLAP_MIN of them (an answerable
#     question paraphrases its answer's sentence; an unanswerable one borrows words from across the
#     text or swaps one in);
#   overlap: that sentence holds under OVERLAP_MIN of the question's content words;
#   pmi: the context raises the best span's log-likelihood by under PMI_MIN nats over no context;
#   margin: "unknown" beats the best span by over MARGIN nats, or over MAX_MISSING of the
#     question's content words are absent from the context.
# Each threshold was set on the tuning halves of the three dev sets (SQuAD qa-dev, notes-qa,
# folder-qa-dev) with `lmassist bench qa` and `eval-task docs-qa --settings`; the figures of both
# halves are in docs/benchmarks.md ("Answers from notes and folders").
RULES = ("elsewhere", "overlap", "pmi", "margin")
DEFAULT_RULE = "elsewhere"
ELSEWHERE_MIN = 2
OVERLAP_MIN = 0.5
PMI_MIN = 2.0
MARGIN = 3.0
MAX_MISSING = 0.5
# Nats per span token added when ranking spans (favours complete spans); off: it did not help.
LENGTH_BONUS = 0.0
# Nats added to a span's log-likelihood per unit of its sentence's share of the question's words.
# The model alone favours a name the context repeats ("Helen Park", chair of the meeting) over the
# one in the sentence that says who brings the budget.
SENTENCE_WEIGHT = 2.0
# A note names its topic once, in a heading: with HEADINGS the heading above a sentence counts as
# part of it (for the overlap, the prior and the words-elsewhere rule). With LOCAL, "elsewhere"
# means elsewhere in the passage holding the sentence, not in every passage read. Neither changes a
# SQuAD paragraph (no headings, one passage). Both off: on the tuning halves headings raised F1 on
# notes but cut abstention on unanswerable questions (notes 0.67 -> 0.33, folder-qa 0.45 -> 0.27),
# and answered "Helen Park" on the budget note; local cut abstention to 0.0-0.13.
HEADINGS = False
LOCAL = False
# What the model reads when it scores a span: "sentence", only the sentence the span was cut from;
# "passage", every passage read. Over whole passages the 135M model answers with the names a text is
# about ("England", "Normandy") almost whatever is asked; one sentence holds fewer such distractors.
# Chosen on the tuning halves with CALIBRATION; F1 rose on five of the six halves of the three dev
# sets (docs/benchmarks.md, "Each span read over its own sentence"). "unknown" is scored over each
# text read, and the margin rule takes its best.
READINGS = ("sentence", "passage")
READING = "sentence"
# Nats of a span's prior taken off its log-likelihood when ranking (Extraction.ranked): the prior is
# the span's log-likelihood as the answer to PRIOR_QUESTION over the same text.
CALIBRATION = 0.5
PRIOR_QUESTION = "What does the context mention?"

# A short instruction and two shots: one answered by a span copied from the context, one "unknown".
SHOTS = (
    "Answer with a short phrase copied from the context, or unknown if the context does not say.\n\n"
    "Context: The museum was designed by Maria Lopez and opened to visitors in the spring.\n"
    "Question: Who designed the museum?\nAnswer: Maria Lopez\n\n"
    "Context: The bridge was finished in 1932 after six years of work by 1,400 men.\n"
    "Question: How many men worked on the bridge?\nAnswer: 1,400\n\n"
    "Context: The museum was designed by Maria Lopez and opened to visitors in the spring.\n"
    "Question: How much did the museum cost?\nAnswer: unknown\n\n"
)


class QuestionAnswerer:
    """Answer questions over passages with one model: extract spans by likelihood, or generate."""

    def __init__(self, model: Model, method: str = "auto", top_k: int = 3, margin: float = MARGIN,
                 max_missing: float = MAX_MISSING, sentences: int = 3, max_candidates: int = 60,
                 rule: str = DEFAULT_RULE, pmi_min: float = PMI_MIN, overlap_min: float = OVERLAP_MIN,
                 length_bonus: float = LENGTH_BONUS, elsewhere_min: int = ELSEWHERE_MIN,
                 sentence_weight: float = SENTENCE_WEIGHT, headings: bool = HEADINGS, local: bool = LOCAL,
                 calibration: float = CALIBRATION, reading: str = READING) -> None:
        if rule not in RULES:
            raise LMAssistError(f"unknown abstention rule {rule!r}; choose from {', '.join(RULES)}")
        if reading not in READINGS:
            raise LMAssistError(f"unknown reading {reading!r}; choose from {', '.join(READINGS)}")
        self.reading = reading
        self.rule, self.pmi_min, self.overlap_min, self.length_bonus = rule, pmi_min, overlap_min, length_bonus
        self.elsewhere_min, self.sentence_weight = elsewhere_min, sentence_weight
        self.headings, self.local, self.calibration = headings, local, calibration
        self.whole_words = WHOLE_WORDS_TOO  # see qa_context; docs_answer.read turns it off for a folder
        if method == "auto":
            method = "spans" if model.supports_score else "generate"
        if method == "spans" and not model.supports_score:
            raise LMAssistError(f"{model.info.name} cannot score continuations; use --method generate")
        self.model, self.method, self.top_k, self.margin = model, method, top_k, margin
        self.sentences, self.max_candidates, self.max_missing = sentences, max_candidates, max_missing

    def context_budget(self) -> int:
        """Tokens of context to use: a fraction of the window (small models read short text best)."""
        return max(128, min(1024, self.model.context_length // 2))

    def passages(self, question: str, docs: list[tuple[str, str]],
                 cancel: CancelToken | None = None) -> list[Passage]:
        """Split documents into passages of about 160 tokens and keep the best that fit the budget."""
        pieces: list[Passage] = []
        for source, text in docs:
            lines = paragraphs(text.splitlines(keepends=True))
            for chunk in chunk_text(lines, self.model.count_tokens, 160, cancel=cancel):
                pieces.append(Passage(source, chunk))
        ranked = retrieve(question, pieces, self.top_k, self.whole_words)
        kept, used = [], 0
        for p in ranked:
            n = self.model.count_tokens(p.text)
            if kept and used + n > self.context_budget():
                break
            if not kept and n > self.context_budget():
                raise LMAssistError("no context passage fits the model's context; give a shorter context file")
            kept.append(p)
            used += n
        return kept

    def answer(self, question: str, docs: list[tuple[str, str]] | None,
               cancel: CancelToken | None = None) -> dict[str, Any]:
        if not docs:
            return {"answer": self._generate(question, None, cancel), "answerable": None, "method": "generate",
                    "passages": [], "candidates": []}
        passages = self.passages(question, docs, cancel)
        context = "\n".join(p.text.strip() for p in passages)
        info = [{"source": p.source, "score": round(p.score, 3), "text": p.text} for p in passages]
        if self.method == "generate":
            text = self._generate(question, context, cancel)
            return {"answer": text, "answerable": None, "method": "generate", "passages": info, "candidates": []}
        ex = self.extract(question, context, [p.text.strip() for p in passages])
        return {"method": "spans", "passages": info, **self.decide(question, ex)}

    def extraction(self, question: str, docs: list[tuple[str, str]]) -> Extraction:
        """The scored spans of the passages :meth:`answer` would read (for benchmarks)."""
        parts = [p.text.strip() for p in self.passages(question, docs)]
        return self.extract(question, "\n".join(parts), parts)

    def decide(self, question: str, ex: Extraction) -> dict[str, Any]:
        """The best span under the sentence prior, and whether to answer with it (the rule's call).

        Apart from :meth:`extract` so that a benchmark can score the spans once and decide under
        many settings."""
        ranked = ex.ranked(self.sentence_weight, self.headings, self.calibration)
        best, top = ranked[0] if ranked else (None, float("-inf"))
        if best is not None:
            best = whole_name(best, ex.source.get(best, ""), question)
            ex.source.setdefault(best, ex.source.get(ranked[0][0], ""))
        context = ex.context
        missing = missing_words(question, context)
        names = missing_names(question, context)
        pmi = overlap = elsewhere = None
        if best is not None:
            sentence = ex.source.get(best, "")
            overlap = question_overlap(question, ex.scope(sentence, self.headings))
            around = ex.part_of(sentence) if self.local else context
            elsewhere = words_elsewhere(question, ex.scope(sentence, self.headings), around)
        if best is not None and self.rule == "pmi":
            free = self.model.score(self.prompt(question, ""), [f" {best}\n"])[0]
            pmi = top - free
        if self.rule == "elsewhere":
            answerable = (best is not None and not names and elsewhere is not None
                          and overlap is not None and overlap >= self.overlap_min
                          and len(elsewhere) < self.elsewhere_min)
        elif self.rule == "overlap":
            answerable = best is not None and not names and overlap is not None and overlap >= self.overlap_min
        elif self.rule == "pmi":
            answerable = best is not None and not names and pmi is not None and pmi >= self.pmi_min
        else:
            answerable = (best is not None and top >= ex.unknown - self.margin
                          and len(missing) <= self.max_missing * max(1, len(content_words(question))))
        return {
            "answer": best if answerable else NO_ANSWER,
            "answerable": answerable,
            "candidates": [{"text": s, "logprob": round(lp, 3)} for s, lp in ranked[:5]],
            "unknown_logprob": round(ex.unknown, 3),
            "missing_words": missing,
            "missing_names": names,
            "pmi": None if pmi is None else round(pmi, 3),
            "overlap": None if overlap is None else round(overlap, 3),
            "words_elsewhere": elsewhere,
            "rule": self.rule,
        }

    def prompt(self, question: str, context: str) -> str:
        return f"{SHOTS}Context: {' '.join(context.split())}\nQuestion: {question.strip()}\nAnswer:"

    def extract(self, question: str, context: str, parts: list[str] | None = None) -> Extraction:
        """Candidate spans from the sentences BM25 ranks highest, each scored by the model over its
        own sentence (or over ``context``: see READING); ``parts`` are the passages ``context`` joins
        (the scope of the words-elsewhere rule)."""
        sentences = note_sentences(context)
        headings = {s.text: s.heading for s in sentences}
        ranked_sentences = retrieve(question, [Passage("", s.text) for s in sentences] or [Passage("", context)],
                                    self.sentences, self.whole_words)
        ranked_spans: list[tuple[int, int, str]] = []
        source: dict[str, str] = {}
        for rank, p in enumerate(ranked_sentences):
            for span in candidate_spans(p.text, question):
                ranked_spans.append((len(span.split()), rank, span))
                source.setdefault(span, p.text)
        candidates: list[str] = []
        for _, _, span in sorted(ranked_spans):  # short spans first: answers are mostly 1-3 words
            if span not in candidates:
                candidates.append(span)
        candidates = candidates[: self.max_candidates]
        read: dict[str, list[str]] = {}  # the text the model reads -> the spans it scores over it
        for span in candidates:
            read.setdefault(context if self.reading == "passage" else source[span], []).append(span)
        scores: dict[str, float] = {}
        priors: dict[str, float] = {}
        unknown = float("-inf")
        for text, spans in (read or {context: []}).items():
            options = [f" {c}\n" for c in spans]
            got = self.model.score(self.prompt(question, text), [" unknown\n", *options])
            unknown = max(unknown, got[0])
            scores.update(zip(spans, got[1:], strict=True))
            if self.calibration and spans:
                # The same text asked nothing in particular: what the model favours whatever the
                # question (scored after the real question, so llama.cpp reuses the evaluated text).
                priors.update(zip(spans, self.model.score(self.prompt(PRIOR_QUESTION, text), options), strict=True))
        # A total log-likelihood charges every token, so "10th" beats "10th and 11th centuries" for
        # being short; a bonus per token (LENGTH_BONUS nats) lets the model's preference for a
        # longer, complete span show (token F1 rewards complete spans).
        if self.length_bonus:
            scores = {c: v + self.length_bonus * self.model.count_tokens(f" {c}\n") for c, v in scores.items()}
        return Extraction(question, context, [(c, scores[c]) for c in candidates], unknown, source,
                          headings, parts or [context], priors)

    def _generate(self, question: str, context: str | None, cancel: CancelToken | None) -> str:
        form = prompts.form_for(self.model)
        opts = GenerationOptions(max_new_tokens=48, temperature=0.0, repetition_penalty=1.1)
        if form == "chat":
            if context is None:
                msgs = [Message("user", prompts.render(prompts.template("qa", "chat", "direct"), question=question))]
            else:
                msgs = [
                    Message("system", prompts.template("qa", "chat", "system")),
                    Message("user", prompts.render(prompts.template("qa", "chat", "user"), context=context, question=question)),
                ]
            return self.model.chat(msgs, opts, cancel).result().strip()
        key = "direct" if context is None else "prompt"
        prompt = prompts.render(prompts.template("qa", "completion", key), context=context or "", question=question)
        return self.model.complete(prompt, opts.replace(stop=prompts.stops("qa")), cancel).result().strip()
