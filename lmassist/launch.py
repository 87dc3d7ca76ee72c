"""The ``lmassist`` console script's first stop: bare ``lmassist`` opens the chat app at once.

Kept free of click and pluggy so that the app's first frame pays for neither; any argument hands
over to the full command line in :mod:`lmassist.cli`.
"""

from __future__ import annotations

import sys
from typing import Any

from lmassist.errors import debug_enabled, exit_for
from lmassist.start import open_chat


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args:
            # lazy: click and pluggy are not on the first-frame path
            from lmassist.cli import main as cli_main

            return cli_main(args)
        try:
            return open_chat()
        except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - one line, as for every command
            exit_for(e, debug=debug_enabled(args))
    finally:
        if argv is None:  # the real process, not a test calling main() in its own
            leave_on_ctrl_c()


def leave_on_ctrl_c() -> None:
    """The command is over and the interpreter tears down (freeing a model in its finalizer takes a
    moment): a Ctrl+C now ends the process at once, as the shell's default does, instead of raising
    KeyboardInterrupt inside a finalizer, which printed "Exception ignored in … Traceback"."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
