"""lmassist-proofread: a task plugin that proofreads text or rewrites it in a tone.

Registering the task is all a task plugin does: lmassist checks it against the task contract
(:class:`lmassist.tasks.base.Task`) and turns it into a command (``lmassist proofread``), a row in
``lmassist tasks`` and a slash command in the chat app. The task itself lives in
:mod:`lmassist_proofread.task`; it imports nothing heavy, so ``lmassist --help`` stays fast.

The plugin also registers a prompt template, ``proofread-formal``, for a conversation rather than a
file (``lmassist ask -t proofread-formal "..."``, ``/template proofread-formal`` in the chat app):
the same copy editor, asked for a formal tone. A user's own template of that name wins over it.
"""

from __future__ import annotations

from lmassist import hookimpl
from lmassist.plugins import Register
from lmassist.templates import Template
from lmassist_proofread.task import SYSTEM, TONES, ProofreadTask

__version__ = "0.1.0"


@hookimpl
def register_tasks(register: Register) -> None:
    register(ProofreadTask())


FORMAL = Template(
    name="proofread-formal",
    description="Rewrite what you send in a formal tone, fixing spelling and grammar",
    system=f"{SYSTEM} Rewrite each message the user sends so that it sounds {TONES['formal']}, correcting "
    "its spelling and grammar and keeping every fact, name and number.",
    options={"temperature": 0.2},
)


@hookimpl
def register_templates(register: Register) -> None:
    register(FORMAL)
