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
    if args:
        from lmassist.cli import main as cli_main  # lazy: click and pluggy are not on the first-frame path

        return cli_main(args)
    try:
        return open_chat()
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - one line, as for every command
        exit_for(e, debug=debug_enabled(args))
