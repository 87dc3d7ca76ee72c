"""The CLI face of a task: a click command built from its declaration, and the body every task
command shares (check input, choose and load the model, run with a progress bar and Ctrl+C, write
the result).

A task over files also takes the job options (``--out``, ``--include``/``--exclude``,
``--files-from``, ``--other``, ``--force``, ``--concurrency``, ``--jsonl``): a folder, a glob or a
path list runs as a job (:mod:`lmassist.jobs`), one input at a time into a mirrored tree or a JSON
Lines stream, resumable after Ctrl+C, a crash or SIGKILL.

Tasks themselves (:mod:`lmassist.tasks`) know nothing of this module; it is the command line that
knows about tasks.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from lmassist.commands.common import ProgressReporter, get_registry, load_model, load_options, model_option
from lmassist.generation import CancelToken, LMAssistError, Model
from lmassist.jobs.memo import Memo, digest, open_memo
from lmassist.jobs.plan import JobPlan, cache_memo_dir, plan_job, pop_job_options, prune_memos
from lmassist.jobs.runner import Job, JobSettings, Tally, refuse_concurrency, streams_records, task_options
from lmassist.jobs.sinks import StreamSink, TreeSink
from lmassist.outputs import check_output, write_output
from lmassist.task_models import choose_model
from lmassist.tasks.base import FileTask, Task

EXIT_FAILED = 1  # a job where some input failed (the others are written)
EXIT_INTERRUPTED = 130

JOB_HELP = """

Many files: a folder (walked recursively, hidden names left out), a glob, or --files-from FILE|-
(one path per line) runs as a job. With --out DIR each input gets one output at the same relative
path under DIR, written atomically; a manifest in DIR/.lmassist records what each was made from, so
running the same command again skips what is up to date (--force redoes it) and a run stopped by
Ctrl+C or a crash continues where it was. Without --out, results stream as JSON Lines (one object
per input, with its "source"). A failed input is reported and the run goes on; the exit status is 1
when any failed, 130 when interrupted."""


def job_examples(task: Task) -> tuple[str, ...]:
    """Two folder-job examples with the task's required options (``translate`` needs ``--to LANG``)."""
    required = "".join(f" {(p.flags or ('--' + p.name.replace('_', '-'),))[-1]} {p.metavar or p.name.upper()}"
                       for p in task.params if p.required and p.kind == "option")
    return (f"lmassist {task.name} notes/{required} --out out/",
            f"find notes -name '*.md' | lmassist {task.name} --files-from -{required} --jsonl")


def job_options(task: Task) -> list[Any]:
    """The job options of a task over files (see :mod:`lmassist.jobs`)."""
    opts = [
        click.option("--out", metavar="DIR", help="Write one output per input under DIR, mirroring the "
                     "input tree; re-running skips outputs that are up to date."),
        click.option("--include", metavar="PATTERN", multiple=True,
                     help="Only inputs whose relative path or name matches the glob (repeatable)."),
        click.option("--exclude", metavar="PATTERN", multiple=True,
                     help="Leave out inputs whose relative path or name matches the glob (repeatable)."),
        click.option("--files-from", metavar="FILE|-", help="Read the input paths from FILE, one per line ('-': stdin)."),
        click.option("--other", type=click.Choice(("copy", "skip")), default=None,
                     help="Files that are not text (binary, another encoding, empty): copy them to --out or skip "
                     "them [default: copy for translate, skip otherwise]."),
        click.option("--force", is_flag=True, help="Redo outputs that are up to date."),
        click.option("--concurrency", type=int, default=1, metavar="N", show_default=True,
                     help="Inputs in flight at once (a server model only); results stay in input order."),
        click.option("--jsonl", is_flag=True, help="Stream JSON Lines: one object per input, as each is done."),
    ]
    if task.name == "summarize":
        opts.append(click.option("--overview", is_flag=True,
                                 help="With --out: also write DIR/overview.md, one summary of the whole set."))
    return opts


def takes_files(task: Task) -> bool:
    return isinstance(task, FileTask) and any(p.files for p in task.params)


def task_command(task: Task) -> click.Command:
    """A click command from the task's declared parameters plus the shared ones (model, loading,
    ``-o`` when it writes output, ``--json`` when it has a schema, the job options over files)."""
    help_text = task.description or task.summary
    if takes_files(task):
        help_text += JOB_HELP
    examples = (*task.examples, *(job_examples(task) if takes_files(task) else ()))
    if examples:
        help_text += "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)
    schema = task.json_schema
    if schema is not None:
        help_text += f"\n\nWith --json the output is one JSON object; 'lmassist tasks --schema {task.name}' prints its schema."

    def callback(**kwargs: Any) -> None:
        run_task_command(task, kwargs)

    cmd = click.Command(task.name, callback=callback, params=task.click_params(), help=help_text,
                        short_help=task.summary)
    extra = [model_option, load_options, *(job_options(task) if takes_files(task) else ())]
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


def choose(task: Task, requested: str | None) -> str | None:
    """The model for the task (the user's ``-m`` wins): THROUGHPUT's ``choose_model``, which says
    before any work when no installed model can do the task."""
    return choose_model(task.name, requested) if task.needs_model else requested


def run_task_command(task: Task, kwargs: dict[str, Any]) -> None:
    """Check the input and the output path before loading the model (a bad path fails in
    milliseconds), run with progress on stderr, and write text or JSON to stdout or ``--output``."""
    requested = kwargs.pop("model", None)
    load = {k: kwargs.pop(k, None) for k in ("device", "dtype", "trust_remote_code")}
    output = kwargs.pop("output", None)
    as_json = kwargs.pop("as_json", False)
    job = pop_job_options(kwargs)
    task.check(kwargs)
    plan = plan_job(task.name, kwargs, job, output, as_json) if takes_files(task) else None
    if plan is None and takes_files(task) and task.needs_model:
        kwargs["inputs"] = task.inputs(kwargs)  # a bad file is its own error, before the model is chosen
    model_name = choose(task, requested)

    def loader() -> Model | None:
        return load_model(model_name, **load) if task.needs_model else None

    if plan is not None:
        run_job_command(task, kwargs, plan, model_name, loader)
        return
    target = check_output(output) if output and output != "-" else None
    memo = _single_memo(task, kwargs, model_name)
    cancel = CancelToken()
    with progress_reporter(task.name, task.progress_unit) as progress:
        model = loader()
        refuse_concurrency(job.get("concurrency") or 1, model)
        with stop_on_signals(cancel):
            result = task.run(model, kwargs, progress=progress, cancel=cancel)
    if cancel.cancelled:
        _interrupted(memo)
    text = json.dumps(result.data, ensure_ascii=False, indent=2) if as_json else result.text
    if not text.endswith("\n"):
        text += "\n"
    if target is not None:
        write_output(target, text)
        click.echo(f"Wrote {output}", err=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if memo is not None:
        if memo.hits:
            click.echo(f"Resumed: {memo.hits} finished pieces reused from the interrupted run.", err=True)
        memo.remove()


def _single_memo(task: Task, values: dict[str, Any], model_name: str | None) -> Memo | None:
    """A single run's memo under the cache folder: its inputs are read here (once, before the model
    loads) and handed to the task, keyed by their content, the model and the options."""
    if not takes_files(task) or not task.needs_model:
        return None
    inputs = task.inputs(values)
    values["inputs"] = inputs
    folder = cache_memo_dir()
    prune_memos(folder)
    memo = open_memo(folder, digest(*(i.text for i in inputs)), _model_id(model_name), task_options(values))
    values["memo"] = memo
    return memo


def _model_id(model_name: str | None) -> str:
    """The resolved model name (``llamacpp:smollm2-135m-instruct``) that outputs are recorded with."""
    try:
        return get_registry().resolve(model_name).full_name
    except LMAssistError:
        return model_name or ""


def _interrupted(memo: Memo | None) -> None:
    kept = len(memo) if memo is not None else 0
    if memo is not None:
        memo.close()
    if kept:
        click.echo(f"Interrupted: {kept} finished pieces are kept; run the same command again to continue "
                   "from there.", err=True)
    else:
        click.echo("Interrupted.", err=True)
    sys.exit(EXIT_INTERRUPTED)


def run_job_command(task: Task, values: dict[str, Any], plan: JobPlan, model_name: str | None,
                    loader: Any) -> None:
    """A tree or stream job: one progress bar over the files, a line per failure, a closing count."""
    settings = JobSettings(_model_id(model_name) if task.needs_model else "", loader, values.get("encoding"),
                           plan.force, plan.concurrency)
    if plan.kind == "tree":
        assert plan.out is not None
        sink: TreeSink | StreamSink = TreeSink(plan.out, plan.other)
    else:
        sink = StreamSink(plan.output, cache_memo_dir())
        prune_memos(cache_memo_dir())
    cancel = CancelToken()
    reporter = ProgressReporter(task.name, "files", transient=True, lazy=True)
    with reporter, stop_on_signals(cancel):
        job = Job(task, values, settings, sink, reporter, cancel)
        records = plan.kind == "stream" and streams_records(task)
        tally = job.run_records(plan.inputs) if records else job.run(plan.inputs)
        if plan.overview and not cancel.cancelled:
            _overview(job, plan)
    _job_end(task, plan, tally, cancel)


def _overview(job: Job, plan: JobPlan) -> None:
    from lmassist.jobs.overview import write_overview  # summarize's; imported only with --overview

    write_overview(job, plan)


def _job_end(task: Task, plan: JobPlan, tally: Tally, cancel: CancelToken) -> None:
    where = f" in {plan.out}" if plan.out is not None else ""
    click.echo(f"{task.name}: {tally.summary()}{where}", err=True)
    if cancel.cancelled:
        click.echo("Interrupted: finished files are kept, and so are the finished chunks of the file in "
                   "progress; run the same command again to continue.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if tally.failed:
        sys.exit(EXIT_FAILED)


@contextmanager
def stop_on_signals(cancel: CancelToken) -> Iterator[None]:
    """Ctrl+C, SIGTERM and SIGHUP stop the work at the next step (finished work is kept); a second
    Ctrl+C interrupts at once."""

    def handler(signum: int, frame: Any) -> None:
        if cancel.cancelled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.cancel()

    wanted = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous: dict[int, Any] = {}
    try:
        for signum in wanted:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def progress_reporter(description: str, unit: str = "") -> ProgressReporter:
    """The task commands' progress: a transient bar on a terminal, a line every few seconds otherwise
    (see :class:`~lmassist.commands.common.ProgressReporter`); a task may name its unit with
    ``progress_unit`` (``"lines"``)."""
    # lazy: drawn at the first step, so nothing native printed while the model loads tears the bar
    return ProgressReporter(description, unit, transient=True, lazy=True)
