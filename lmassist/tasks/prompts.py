"""Prompt templates for both kinds of model, overridable in the user's settings.

Chat models (the default SmolLM2) get chat messages; base models with no chat template (GPT-2,
in-house models, Gemma-3-270M) get few-shot completion prompts that end on a cue ("TL;DR:",
"French:") with stop strings, because a base model continues text rather than follows orders.

A user overrides any template in settings under ``tasks.<task>.<form>.<key>``, e.g.::

    lmassist settings set tasks.summarize.chat.user "Summarize for a child:\\n\\n{text}"

Templates use ``{name}`` fields; only the names a task passes are replaced, so braces in the text
itself (code, JSON) are safe.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from lmassist.config import Settings
from lmassist.generation import decode_escapes

Form = Literal["chat", "completion"]

DEFAULTS: dict[str, dict[str, dict[str, str]]] = {
    "summarize": {
        "chat": {
            "system": "You are a careful assistant who writes faithful, concise summaries.",
            "user": "Summarize the following text in {length_words}. Only use facts from the text.\n\n{text}",
            "reduce": "These are summaries of consecutive parts of one document. Combine them into one "
            "summary of {length_words}.\n\n{text}",
            "overview": "These are summaries of the files in one folder, one per line after the file's name. "
            "Write one overview of the whole folder in {length_words}: what it holds and its main points.\n\n{text}",
        },
        "completion": {
            "prompt": "{text}\n\nTL;DR:",
            "reduce": "{text}\n\nTL;DR:",
            "overview": "{text}\n\nTL;DR:",
            "stop": "\n\n",
        },
    },
    "translate": {
        "chat": {
            "system": "You are a translator. Reply with the translation only, nothing else.",
            "user": "Translate this {source} text into {target}:\n\n{text}",
        },
        "completion": {
            "prompt": "{shots}{source}: {text}\n{target}:",
            "stop": "\n",
        },
    },
    "qa": {
        "chat": {
            "system": "Answer the question using only the context. If the context does not contain the answer, say so.",
            "user": "Context:\n{context}\n\nQuestion: {question}",
            "direct": "{question}",
        },
        "completion": {
            "prompt": "{context}\n\nQuestion: {question}\nShort answer:",
            "direct": "Question: {question}\nAnswer:",
            "stop": "\n",
        },
    },
}


def form_for(model: Any, override: str | None = None) -> Form:
    """``chat`` for models with a chat template, ``completion`` for base models (or the override)."""
    if override in ("chat", "completion"):
        return override  # type: ignore[return-value]
    return "chat" if getattr(model.info, "chat_template", False) else "completion"


def template(task: str, form: Form, key: str, settings: Any = None) -> str:
    """The user's override from settings if there is one, else the built-in default."""
    if settings is None:
        try:
            settings = Settings()
        except Exception:  # noqa: BLE001 - a broken settings file must not break the built-in prompt
            settings = None
    if settings is not None:
        value = settings.get(f"tasks.{task}.{form}.{key}")
        if isinstance(value, str) and value:
            return value
    return DEFAULTS[task][form][key]


_FIELD = re.compile(r"\{([a-z_]+)\}")


def render(template_text: str, /, **fields: str) -> str:
    """Fill ``{name}`` fields that are given; leave every other brace alone (safe for code)."""
    return _FIELD.sub(lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template_text)


def stops(task: str, key: str = "stop", settings: Any = None) -> tuple[str, ...]:
    """Stop strings of a completion template (a settings value may use ``\\n`` escapes)."""
    raw = template(task, "completion", key, settings)
    return tuple(decode_escapes(s) for s in raw.split("|") if s) or ("\n\n",)
