"""lmassist-proofread: a task plugin that proofreads text or rewrites it in a tone.

Registering the task is all a task plugin does: lmassist turns every registered task into a
command (``lmassist proofread``), a row in ``lmassist tasks`` and a slash command in the chat app.
The task itself lives in :mod:`lmassist_proofread.task`, imported only when the hook runs.
"""

from __future__ import annotations

from typing import Any

from lmassist import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_tasks(register: Any) -> None:
    from lmassist_proofread.task import ProofreadTask

    register(ProofreadTask())
