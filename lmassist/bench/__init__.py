"""Benchmarks: ``lmassist bench ...`` and ``lmassist eval-task``, registered in one place.

Being moved here from ``lmassist/commands/bench*.py``; this hook is their one registration.
"""

from __future__ import annotations

import click

from lmassist.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from lmassist.bench import hf as bench_hf
    from lmassist.bench import llamacpp as bench
    from lmassist.bench import tasks as bench_tasks
    from lmassist.bench import tui as bench_tui

    for module in (bench, bench_hf, bench_tui):
        module.register_commands(cli)
    group = cli.commands.get("bench")
    if isinstance(group, click.Group):
        bench_tasks.register_bench_commands(group)
    bench_tasks.register_eval_command(cli)
