"""The attachments put in front of a conversation's question, fitted to what the model's context leaves.

:mod:`lmassist.conversation` calls :func:`with_attachments` on every turn with the conversation's
files (stored and pending); the app calls it on its own thread's messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmassist.attachments.prompt import AttachmentFit, fit_attachments
from lmassist.attachments.record import Attachment
from lmassist.generation import GenerationOptions, Message, Model


def latest_versions(attachments: Sequence[Attachment]) -> list[Attachment]:
    """One attachment per name, its latest content, in the order they were last attached."""
    last: dict[str, Attachment] = {}
    for a in attachments:
        last.pop(a.name, None)  # a name attached again moves to the end: its newest content
        last[a.name] = a
    return list(last.values())


def with_attachments(messages: list[Message], attachments: Sequence[Attachment], model: Model | None,
                     options: GenerationOptions | None = None) -> tuple[list[Message], AttachmentFit | None]:
    """``messages`` with the attachments in front of the last (the question), and how they fit.

    They get what the context leaves after the system prompt and the question, less up to a
    quarter of it for the turns before (those that still do not fit are dropped oldest first by
    :meth:`lmassist.generation.Model.fit`); without a model they are shown whole. Raises
    :class:`lmassist.errors.ContextLengthError` when not one passage fits.
    """
    if not attachments or not messages:
        return messages, None
    question = messages[-1].content
    files = latest_versions(attachments)
    if model is None:
        fit = fit_attachments(files, question, 1 << 40)
    else:
        opts = options or model.info.default_options
        room = model.prompt_budget(opts)
        fixed = [m for m in messages[:1] if m.role == "system"] + [Message("user", question)]
        earlier = messages[len(fixed) - 1:-1]
        history = model.count_messages(earlier) if earlier else 0
        budget = room - model.count_messages(fixed) - min(history, room // 4) - 8
        fit = fit_attachments(files, question, budget, model.count_tokens)
    return [*messages[:-1], Message("user", f"{fit.text}\n\n{question}")], fit
