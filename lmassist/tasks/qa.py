"""The ``qa`` task: answer a question from context files, from an indexed folder (``--docs``, with
``path:line`` citations), or directly. The answering itself is :mod:`lmassist.tasks.qa_answerer`
(spans ranked by likelihood, the abstention rules) and :mod:`lmassist.tasks.docs_answer` (a folder).
"""

from __future__ import annotations

from typing import Any

from lmassist.generation import CancelToken, LMAssistError, Model
from lmassist.tasks.base import Param, Progress, Task, TaskResult, read_inputs
from lmassist.tasks.docs_answer import Citation, answer_from_docs
from lmassist.tasks.qa_answerer import DEFAULT_RULE, NO_ANSWER, RULES, QuestionAnswerer

__all__ = ["NO_ANSWER", "QATask", "QuestionAnswerer"]


QA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "model", "question", "answer", "answerable", "method", "passages"],
    "properties": {
        "task": {"const": "qa"},
        "model": {"type": "string"},
        "question": {"type": "string"},
        "answer": {"type": "string", "description": "the answer, or a sentence saying the context lacks it"},
        "answerable": {"type": ["boolean", "null"],
                       "description": "false when the context does not contain the answer; null when not judged"},
        "method": {"enum": ["spans", "generate"]},
        "passages": {"type": "array", "description": "the retrieved context passages, best first",
                     "items": {"type": "object", "properties": {"source": {"type": "string"},
                               "score": {"type": "number"}, "text": {"type": "string"}}}},
        "candidates": {"type": "array", "description": "the top answer spans and their log-likelihoods",
                       "items": {"type": "object", "properties": {"text": {"type": "string"},
                                 "logprob": {"type": "number"}}}},
        "unknown_logprob": {"type": "number", "description": "log-likelihood of 'unknown' (spans only)"},
        "missing_words": {"type": "array", "items": {"type": "string"},
                          "description": "question words found nowhere in the context (spans only)"},
        "missing_names": {"type": "array", "items": {"type": "string"},
                          "description": "names and numbers of the question the context lacks (spans only)"},
        "pmi": {"type": ["number", "null"],
                "description": "how much the context raised the best span's log-likelihood (rule pmi only)"},
        "overlap": {"type": ["number", "null"],
                    "description": "share of the question's words in the best span's sentence (spans only)"},
        "words_elsewhere": {"type": ["array", "null"], "items": {"type": "string"},
                            "description": "question words (stemmed) the context uses outside the best span's "
                            "sentence (spans only)"},
        "rule": {"enum": list(RULES), "description": "the abstention rule used (spans only)"},
        "collection": {"type": "string", "description": "the indexed folder answered from (--docs only)"},
        "citations": {"type": "array", "description": "where the answer is, first, then the other passages read "
                      "(--docs only; empty when it abstains)",
                      "items": {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"},
                                "end_line": {"type": "integer"}, "text": {"type": "string"}}}},
    },
}


class QATask(Task):
    name = "qa"
    summary = "Answer a question from context files (retrieval + answer spans), or directly."
    description = (
        "Answer QUESTION. With --context FILE (repeatable; '-' is stdin), the most relevant passages are "
        "picked with BM25 and the answer is a span of the context chosen by the model's likelihood; when "
        "the context does not contain the answer, it says so. With --docs NAME it answers from a folder indexed "
        "with `lmassist docs add` and cites the file and line (path:line) after the answer. Without context the "
        "model answers directly."
    )
    params = (
        Param("question", "argument", metavar="QUESTION", multiple=True),
        Param("context", "option", flags=("-c", "--context"), metavar="FILE", multiple=True,
              help="A context file to answer from (repeatable; '-' for stdin)."),
        Param("docs", "option", flags=("--docs",), metavar="NAME",
              help="Answer from the indexed folder NAME (see lmassist docs add), citing path:line."),
        Param("method", "option", choices=("auto", "spans", "generate"), default="auto",
              help="spans: rank answer spans from the context by likelihood; generate: free generation."),
        Param("top_k", "option", flags=("--top-k",), type=int, default=3, metavar="N", help="Context passages to use."),
        Param("rule", "option", choices=RULES, default=DEFAULT_RULE,
              help="When to say the context lacks the answer: elsewhere (a question name missing from the context, "
              "two or more question words that the context uses outside the answer's sentence, or that sentence "
              "holding under half of them), overlap (a missing name, or the answer's sentence sharing under half "
              "the question's words), pmi (a missing name, or the context barely raising the best span's "
              "likelihood) or margin ('unknown' scoring close to it)."),
    )
    json_schema = QA_SCHEMA
    reads_files = True
    examples = ('lmassist qa "Who will bring the budget?" --context notes.md',
                'lmassist docs add ~/notes && lmassist qa --docs notes "Who brings the budget?"',
                'lmassist qa "What is a haiku?"')

    def check(self, values: dict[str, Any]) -> None:
        if not " ".join(values.get("question") or ()).strip():
            raise LMAssistError('give a question, e.g. lmassist qa "Who will bring the budget?" --context notes.md')
        if values.get("top_k", 3) < 1:
            raise LMAssistError("--top-k must be at least 1")
        if values.get("docs") and values.get("context"):
            raise LMAssistError("give --context FILE or --docs NAME, not both")
        if values.get("docs"):
            from lmassist.docindex.index import DocIndex  # only --docs opens the index

            with DocIndex() as index:  # before the model loads: a wrong name fails at once
                index.collection(values["docs"])

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        question = " ".join(values["question"]).strip()
        if values.get("docs"):
            return self._run_docs(model, values["docs"], question, progress, cancel)
        docs = None
        if values.get("context"):
            docs = [(i.source, i.text) for i in read_inputs(values["context"], values.get("encoding"))]
        qa = QuestionAnswerer(model, method=values.get("method") or "auto", top_k=values.get("top_k") or 3,
                              rule=values.get("rule") or DEFAULT_RULE)
        if progress:
            progress(0, 1)
        out = qa.answer(question, docs, cancel)
        if progress:
            progress(1, 1)
        md = out["answer"]
        if out["passages"] and out["answerable"]:
            md = f"**{out['answer']}**\n\n> {_quote(out['passages'][0]['text'])}\n\n— {out['passages'][0]['source']}"
        return self.result(model, out["answer"], md, question=question, **out)


    def _run_docs(self, model: Model, name: str, question: str, progress: Progress | None,
                  cancel: CancelToken | None) -> TaskResult:
        """``--docs NAME``: the answer from the folder's passages, then where it is (``path:line``)."""
        if progress:
            progress(0, 1)
        out = answer_from_docs(model, name, question, cancel)
        if progress:
            progress(1, 1)
        sources = ", ".join(str(c) for c in out.citations)
        text = out.text if out.abstained else f"{out.text}\n\nSources: {sources}"
        md = out.text if out.abstained else f"**{out.text}**\n\nSources: {sources}"
        return self.result(model, text, md, question=question, answer=out.text, answerable=not out.abstained,
                           method="spans" if model.supports_score else "generate", collection=name,
                           citations=[_citation(c) for c in out.citations],
                           passages=[{"source": str(c), **_citation(c)} for c in out.passages])


def _citation(c: Citation) -> dict[str, Any]:
    return {"path": c.path, "line": c.line, "end_line": c.end_line, "text": c.text}


def _quote(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
