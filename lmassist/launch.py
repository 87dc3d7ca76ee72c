"""The ``lmassist`` console script's first stop: bare ``lmassist`` opens the chat app at once.

Kept free of click and pluggy so that the app's first frame pays for neither; any argument hands
over to the full command line in :mod:`lmassist.cli`.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from lmassist.errors import LMAssistError


def open_chat() -> None:
    """Open the TUI when it is installed and we have a terminal; otherwise the line chat.

    The cyclic garbage collector is off from here to the app's first frame (the app turns it back on
    right after painting it, see ``LMAssistApp.on_mount``): importing Textual and building the
    screen creates objects by the hundred thousand and hardly any garbage, and the collector's
    passes over them were about 3% of the instructions before the first frame. Reference counting
    still frees everything that is not in a cycle meanwhile.
    """
    if sys.stdin.isatty() and sys.stdout.isatty():
        gc.disable()
        try:
            try:
                from lmassist.tui.app import run_app
            except ModuleNotFoundError as e:
                if not (e.name or "").startswith("lmassist.tui"):
                    raise
            else:
                run_app()
                return
        finally:
            gc.enable()  # whatever happened: the line chat and everything after run with it on
    from lmassist.commands.chat import run_line_chat

    run_line_chat(None, None, (), False, None)


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    if args:
        from lmassist.cli import main as cli_main

        return cli_main(args)
    try:
        open_chat()
    except KeyboardInterrupt:
        sys.exit(130)
    except LMAssistError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
