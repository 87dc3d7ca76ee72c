"""The errors lmassist shows its users, in a module of their own.

They live apart from the generation contract (which re-exports them) so that code on the app's
start-up path can catch them without building the contract's dataclasses before the first frame.
"""

from __future__ import annotations


class LMAssistError(Exception):
    """An error meant for the user: its message is shown as one line, without a traceback."""


class ModelLoadError(LMAssistError):
    """A model could not be found or loaded (missing file, corrupt weights, unknown name)."""


class ContextLengthError(LMAssistError):
    """The prompt does not fit in the model's context window, even after trimming."""


class UnsupportedError(LMAssistError):
    """The backend cannot do what was asked (for example ``score`` over a remote API)."""


def one_line(text: str, limit: int = 300) -> str:
    """``text`` folded onto one line and cut to ``limit`` characters: a server's or a tool's message
    may run to pages, and an error here is always one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(error: BaseException, limit: int = 300) -> str:
    """An exception as the one line a user sees: our own errors as written, any other with its type
    name in front, since "KeyError: 'x'" says more than "'x'"."""
    if isinstance(error, LMAssistError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return one_line(text, limit)
