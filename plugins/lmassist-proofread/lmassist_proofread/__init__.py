"""lmassist-proofread: a task plugin that proofreads text or rewrites it in a tone.

Registering the task is all a task plugin does: lmassist checks it against the task contract
(:class:`lmassist.tasks.base.Task`) and turns it into a command (``lmassist proofread``), a row in
``lmassist tasks`` and a slash command in the chat app. The task itself lives in
:mod:`lmassist_proofread.task`; it imports nothing heavy, so ``lmassist --help`` stays fast.
"""

from __future__ import annotations

from lmassist import hookimpl
from lmassist.plugins import Register
from lmassist_proofread.task import ProofreadTask

__version__ = "0.1.0"


@hookimpl
def register_tasks(register: Register) -> None:
    register(ProofreadTask())
