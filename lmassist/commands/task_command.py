"""The CLI face of a task: a click command built from its declaration, and the body every task
command shares (check input, load the model, run with a progress bar and Ctrl+C, write the result).

Tasks themselves (:mod:`lmassist.tasks`) know nothing of this module; it is the command line that
knows about tasks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lmassist.commands.ask import cancel_on_sigint
from lmassist.commands.common import load_model, load_options, model_option
from lmassist.config import atomic_write_text
from lmassist.generation import CancelToken, LMAssistError
from lmassist.tasks.base import Progress, Task


def task_command(task: Any) -> click.Command:
    """A click command from the task's declared parameters plus the shared ones (model, loading,
    ``-o`` when it writes output, ``--json`` when it has a schema). Works for duck-typed tasks too."""
    help_text = getattr(task, "description", "") or task.summary
    examples = getattr(task, "examples", ())
    if examples:
        help_text += "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)
    schema = getattr(task, "json_schema", None)
    if schema is not None:
        help_text += f"\n\nWith --json the output is one JSON object; 'lmassist tasks --schema {task.name}' prints its schema."

    def callback(**kwargs: Any) -> None:
        run_task_command(task, kwargs)

    params = Task.click_params(task)
    cmd = click.Command(task.name, callback=callback, params=params, help=help_text, short_help=task.summary)
    extra = [model_option, load_options]
    if getattr(task, "writes_output", True):
        extra.append(click.option(
            "-o", "--output", type=click.Path(dir_okay=False, writable=True), metavar="OUT",
            help="Write the result to OUT (atomically) instead of stdout.",
        ))
    if schema is not None:
        extra.append(click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see the schema)."))
    for decorate in extra:
        cmd = decorate(cmd)
    return cmd


def run_task_command(task: Any, kwargs: dict[str, Any]) -> None:
    """Check the input before loading the model (a bad path fails in milliseconds), run with
    progress, and write text or JSON to stdout or, atomically, to ``--output``."""
    model_name = kwargs.pop("model", None)
    load = {k: kwargs.pop(k, None) for k in ("device", "dtype", "trust_remote_code")}
    output = kwargs.pop("output", None)
    as_json = kwargs.pop("as_json", False)
    task.check(kwargs)
    if output and Path(output).is_dir():
        raise LMAssistError(f"{output} is a folder; give a file name for -o")
    model = load_model(model_name, **load) if getattr(task, "needs_model", True) else None
    cancel = CancelToken()
    with cancel_on_sigint(cancel), progress_reporter(task.name) as progress:
        result = task.run(model, kwargs, progress=progress, cancel=cancel)
    if cancel.cancelled:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    text = json.dumps(result.data, ensure_ascii=False, indent=2) if as_json else result.text
    if not text.endswith("\n"):
        text += "\n"
    if output:
        atomic_write_text(Path(output), text)
        click.echo(f"Wrote {output}", err=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


class progress_reporter:
    """A progress bar on stderr when it is a terminal; a no-op callback otherwise (scripts, tests)."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Any = None
        self.task_id: Any = None

    def __enter__(self) -> Progress:
        if not sys.stderr.isatty():
            return lambda done, total: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task_id = self.bar.add_task(self.description, total=None)
        self.bar.start()

        def update(done: int, total: int | None) -> None:
            self.bar.update(self.task_id, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
