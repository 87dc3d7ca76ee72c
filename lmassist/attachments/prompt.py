"""What the model is shown of the attachments: each file whole under a header naming it, or, when
they do not fit the context, the passages that best match the question under the same headers.

One format everywhere (``ask``, the line chat, the app, every later turn), so a model sees a file
the same way each time and the user can read in the history what it was shown. Cutting a file to
fit would answer from its first pages as if they were all of it; retrieval picks what the question
is about, and :attr:`AttachmentFit.summary` says that it did and how much did not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lmassist.attachments.record import Attachment
from lmassist.docindex.blocks import Block
from lmassist.docindex.passages import approx_tokens, blocks_for, pack
from lmassist.errors import ContextLengthError

PASSAGE_TOKENS = 200  # retrieval passages: enough to answer from, small enough to pick many
MIN_BUDGET = 32  # below this no passage is worth showing


def header(name: str, lines: tuple[int, int] | None = None) -> str:
    where = f" (lines {lines[0]}-{lines[1]})" if lines else ""
    return f"----- {name}{where} -----"


def footer(name: str) -> str:
    return f"----- end of {name} -----"


def render(attachments: Sequence[Attachment]) -> str:
    """Every attachment whole, each between a header and a footer that name it.

    No sentence introduces them: on the second QA dev set (tests/data/notes-qa, one note attached,
    the default model) a line saying "The user attached these files:" made it answer *about* the
    files ("The user has sent the files...") — 0.40 of tune questions answered against 0.57 bare.
    """
    return "\n\n".join(f"{header(a.name)}\n{a.text.rstrip()}\n{footer(a.name)}" for a in attachments)


@dataclass(frozen=True)
class Passage:
    """A piece of an attachment: which file (its place in the list, its name) and which block of it."""

    index: int
    name: str
    block: Block

    @property
    def text(self) -> str:
        return self.block.text

    def render(self) -> str:
        lines = (self.block.start_line, self.block.end_line)
        return f"{header(self.name, lines)}\n{self.text.rstrip()}\n{footer(self.name)}"


def split_passages(attachments: Sequence[Attachment], max_tokens: int = PASSAGE_TOKENS) -> list[Passage]:
    """The attachments as retrieval passages, split by their structure (Markdown headings,
    paragraphs, code blocks...: :mod:`lmassist.docindex.passages`), in document order."""
    out = []
    for i, a in enumerate(attachments):
        for block in pack(blocks_for(a.name, a.text), max_tokens=max_tokens):
            out.append(Passage(i, a.name, block))
    return out


@dataclass(frozen=True)
class AttachmentFit:
    """What the model is shown of the attachments and how it was chosen.

    ``tokens``: the attachments whole (``estimated`` when not counted by the model: far too many to
    fit); ``budget``: the tokens the context leaves them; ``used``/``total`` passages when retrieval
    picked (``used`` is None when every file is shown whole).
    """

    text: str
    tokens: int
    budget: int
    used: int | None = None
    total: int | None = None
    estimated: bool = False

    @property
    def retrieved(self) -> bool:
        return self.used is not None

    @property
    def summary(self) -> str:
        """The one line a face shows when the attachments did not fit."""
        approx = "~" if self.estimated else ""
        if not self.retrieved:
            return f"Attachments: {approx}{self.tokens:,} tokens, all shown to the model."
        return (
            f"Attachments: {approx}{self.tokens:,} tokens; the context leaves {self.budget:,} for them, "
            f"so the model sees the {self.used} of {self.total} passages that best match the question."
        )


def fit_attachments(
    attachments: Sequence[Attachment], question: str, budget: int,
    count_tokens: Callable[[str], int] = approx_tokens,
) -> AttachmentFit:
    """The attachments whole when they fit ``budget`` tokens, else the passages that best match
    ``question`` (BM25, :func:`lmassist.docindex.ranking.rank_texts`), best first until the budget is
    spent, then shown in document order."""
    whole = render(attachments)
    rough = approx_tokens(whole)
    estimated = rough > 3 * max(budget, 1)  # clearly too big: do not tokenize megabytes to say so
    tokens = rough if estimated else count_tokens(whole)
    if tokens <= budget:
        return AttachmentFit(whole, tokens, budget)
    if budget < MIN_BUDGET:
        raise ContextLengthError(
            f"the attachments are {tokens:,} tokens and the context leaves no room for them "
            f"({max(budget, 0)} tokens); shorten the question or the system prompt, or use a model with a longer context"
        )
    passages = split_passages(attachments)
    chosen = _choose(passages, question, budget, count_tokens)
    if not chosen:
        raise ContextLengthError(
            f"the attachments are {tokens:,} tokens and not one passage of them fits the {budget} the context leaves"
        )
    shown = sorted(chosen, key=lambda p: (p.index, p.block.start_line))
    text = "\n\n".join(p.render() for p in shown)
    return AttachmentFit(text, tokens, budget, len(shown), len(passages), estimated)


def _choose(passages: Sequence[Passage], question: str, budget: int,
            count_tokens: Callable[[str], int]) -> list[Passage]:
    """Best-ranked passages while they fit; then, if room is left, the rest in document order (a
    question that names nothing in the files, "summarize this", still gets their beginning)."""
    from lmassist.docindex.ranking import rank_texts

    ranked = rank_texts([p.text for p in passages], question, len(passages)) if question.strip() else []
    order = list(dict.fromkeys([*ranked, *range(len(passages))]))
    chosen: list[Passage] = []
    used = 0
    for i in order:
        cost = count_tokens(passages[i].render()) + 2
        if used + cost > budget:
            continue
        chosen.append(passages[i])
        used += cost
        if budget - used < MIN_BUDGET:
            break
    return chosen
