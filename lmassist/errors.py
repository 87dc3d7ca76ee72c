"""The errors lmassist shows its users, in a module of their own.

They live apart from the generation contract (which re-exports them) so that code on the app's
start-up path can catch them without building the contract's dataclasses before the first frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

INTERRUPTED = 130  # the status a shell gives a process ended by Ctrl+C (128 + SIGINT)


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


def debug_enabled(argv: list[str] | None = None) -> bool:
    """``--debug`` on the command line or ``LMASSIST_DEBUG`` set: show tracebacks instead of one line."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get("LMASSIST_DEBUG", "") not in ("", "0")


def exit_status(error: BaseException, explain: Callable[[BaseException], str | None] | None = None,
                ) -> tuple[int, str | None]:
    """The exit status and the one line for stderr (None: say nothing) of an error that ended a command.

    Ctrl+C is 130, "Interrupted."; a reader of stdout that went away (``| head``) is 0 and silent; our
    own errors are 1 with their message; anything else is 1 with ``explain``'s line when it has one
    (a missing optional dependency, say), else the exception's type and message.
    """
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "Interrupted."
    if isinstance(error, BrokenPipeError):
        return 0, None
    if isinstance(error, LMAssistError):
        return 1, f"Error: {error}"
    hint = explain(error) if explain is not None else None
    if hint is not None:
        return 1, f"Error: {hint}"
    return 1, f"Error: {type(error).__name__}: {error} (run with --debug for details)"


def exit_for(error: BaseException, *, debug: bool = False,
             explain: Callable[[BaseException], str | None] | None = None) -> NoReturn:
    """End a console entry point that ``error`` reached, as :func:`exit_status` says; with ``debug``
    any error but Ctrl+C and a closed pipe is raised again, traceback and all. Call it from an
    ``except`` block."""
    if debug and not isinstance(error, (KeyboardInterrupt, BrokenPipeError)):
        raise error
    status, line = exit_status(error, explain)
    if isinstance(error, BrokenPipeError):  # keep Python's own flush at exit from failing a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if line is not None:
        print(line, file=sys.stderr, flush=True)
    sys.exit(status)
