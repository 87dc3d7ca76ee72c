"""Open the chat app: what bare ``lmassist`` (and ``lmassist --debug``) does.

On the app's first-frame path, so kept free of click and pluggy: both entry points import it, the
console script (:mod:`lmassist.launch`) and the command line (:mod:`lmassist.cli`).
"""

from __future__ import annotations

import gc
import sys


def open_chat() -> None:
    """Open the TUI when it is installed and we have a terminal; otherwise the line chat.

    The cyclic garbage collector is off from here to the app's first frame (``LMAssistApp`` turns it
    back on right after painting it): building the screen makes objects by the hundred thousand and
    hardly any garbage, so the collector's passes are pure start-up cost.
    """
    if sys.stdin.isatty() and sys.stdout.isatty():
        gc.disable()
        try:
            try:
                from lmassist.tui.app import run_app  # lazy: Textual, only when there is a terminal
            except ModuleNotFoundError as e:
                if not (e.name or "").startswith("lmassist.tui"):
                    raise
            else:
                run_app()
                return
        finally:
            gc.enable()  # whatever happened: the line chat and everything after run with it on
    from lmassist.commands.chat import run_line_chat  # lazy: the TUI path never needs it

    run_line_chat(None, None, (), False, None)
