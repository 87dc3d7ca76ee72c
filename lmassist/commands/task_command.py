"""The CLI face of a task: a click command built from its declaration, and the body every task
command shares (check input, load the model, run with a progress bar and Ctrl+C, write the result).

Tasks themselves (:mod:`lmassist.tasks`) know nothing of this module; it is the command line that
knows about tasks.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from lmassist.commands.ask import cancel_on_sigint
from lmassist.commands.common import ProgressReporter, load_model, load_options, model_option
from lmassist.generation import CancelToken
from lmassist.outputs import check_output, write_output
from lmassist.tasks.base import Task


def task_command(task: Task) -> click.Command:
    """A click command from the task's declared parameters plus the shared ones (model, loading,
    ``-o`` when it writes output, ``--json`` when it has a schema)."""
    help_text = task.description or task.summary
    if task.examples:
        help_text += "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in task.examples)
    schema = task.json_schema
    if schema is not None:
        help_text += f"\n\nWith --json the output is one JSON object; 'lmassist tasks --schema {task.name}' prints its schema."

    def callback(**kwargs: Any) -> None:
        run_task_command(task, kwargs)

    cmd = click.Command(task.name, callback=callback, params=task.click_params(), help=help_text,
                        short_help=task.summary)
    extra = [model_option, load_options]
    if task.writes_output:
        extra.append(click.option(
            "-o", "--output", metavar="FILE",
            help="Write the result to FILE instead of stdout: a regular file is replaced atomically and "
            "keeps its permissions, a symlink is written through, a device or folder is refused "
            "(checked before any work starts).",
        ))
    if schema is not None:
        extra.append(click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see the schema)."))
    for decorate in extra:
        cmd = decorate(cmd)
    cmd.lmassist_task = task  # type: ignore[attr-defined]  # lists it under "Tasks" in lmassist --help
    return cmd


def run_task_command(task: Task, kwargs: dict[str, Any]) -> None:
    """Check the input and the output path before loading the model (a bad path fails in
    milliseconds), run with progress on stderr, and write text or JSON to stdout or ``--output``."""
    model_name = kwargs.pop("model", None)
    load = {k: kwargs.pop(k, None) for k in ("device", "dtype", "trust_remote_code")}
    output = kwargs.pop("output", None)
    as_json = kwargs.pop("as_json", False)
    task.check(kwargs)
    target = check_output(output) if output and output != "-" else None
    cancel = CancelToken()
    with progress_reporter(task.name, task.progress_unit) as progress:
        model = load_model(model_name, **load) if task.needs_model else None
        with cancel_on_sigint(cancel):
            result = task.run(model, kwargs, progress=progress, cancel=cancel)
    if cancel.cancelled:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    text = json.dumps(result.data, ensure_ascii=False, indent=2) if as_json else result.text
    if not text.endswith("\n"):
        text += "\n"
    if target is not None:
        write_output(target, text)
        click.echo(f"Wrote {output}", err=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def progress_reporter(description: str, unit: str = "") -> ProgressReporter:
    """The task commands' progress: a transient bar on a terminal, a line every few seconds otherwise
    (see :class:`~lmassist.commands.common.ProgressReporter`); a task may name its unit with
    ``progress_unit`` (``"lines"``)."""
    # lazy: drawn at the first step, so nothing native printed while the model loads tears the bar
    return ProgressReporter(description, unit, transient=True, lazy=True)
