"""The built-in task plugin: registers the four tasks through the hook a third-party plugin uses.

Their commands, and ``lmassist tasks``, are the command line's business
(:mod:`lmassist.commands.tasks`, which builds one command per task in the registry).
"""

from __future__ import annotations

from lmassist import hookimpl
from lmassist.plugins import Register
from lmassist.tasks.qa import QATask
from lmassist.tasks.sentiment import SentimentTask
from lmassist.tasks.summarize import SummarizeTask
from lmassist.tasks.translate import TranslateTask


@hookimpl
def register_tasks(register: Register) -> None:
    for task in (SummarizeTask(), TranslateTask(), SentimentTask(), QATask()):
        register(task)
