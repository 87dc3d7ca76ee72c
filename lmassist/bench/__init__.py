"""Benchmarks: ``lmassist bench ...`` and ``lmassist eval-task``, registered in one place.

One module per subject (``llamacpp``, ``hf``, ``tui``, ``inhouse``, ``sentiment``, ``tasks``, ``docs``, ``jobs``), what they share in
``common``, the task scores in ``metrics``; ``python -m lmassist.bench`` is the child process that
``bench ask`` and ``bench buffers`` measure in. Figures and the commands that reproduce them:
docs/benchmarks.md.
"""

from __future__ import annotations

import click

from lmassist import hookimpl
from lmassist.bench import docs, hf, inhouse, jobs, llamacpp, sentiment, tasks, tui

BENCHMARKS = (*llamacpp.COMMANDS, *hf.COMMANDS, *tui.COMMANDS, *inhouse.COMMANDS, *sentiment.COMMANDS,
              *tasks.COMMANDS, *docs.COMMANDS, *jobs.COMMANDS)


@hookimpl
def register_commands(cli: click.Group) -> None:
    group = cli.commands.get("bench")
    if isinstance(group, click.Group):
        for command in BENCHMARKS:
            group.add_command(command)
    cli.add_command(tasks.eval_task)
