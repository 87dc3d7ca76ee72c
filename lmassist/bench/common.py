"""What every benchmark shares: medians, the printed report, progress over the rows, busy processes
beside a run, peak memory of a fresh ``lmassist``, measurements in a child process, and where the
dev data is.

The machines we run on are shared and noisy, so each benchmark interleaves the things it compares
and reports ratios, not absolute numbers alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from lmassist.commands.common import console
from lmassist.errors import LMAssistError, exit_for
from lmassist.system import rusage_to_mb

# The dev sets of a checkout that sits beside the project's shared/ folder (as the design brief lays
# it out), relative to the working directory: nothing here points into the installed package.
DATA_DIR = "../shared/data"
EVAL_DIR = f"{DATA_DIR}/eval"


def median(values: list[float]) -> float:
    """The median, NaN for no values (a run that measured nothing still prints)."""
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    """The two facts every report starts with."""
    return {"python": sys.version.split()[0], "cpus": os.cpu_count()}


def report(
    figures: dict[str, Any], targets: dict[str, str], as_json: bool, *, width: int = 20,
    echo: Callable[[str], Any] = click.echo, lines: Callable[[str, Any], list[str] | None] | None = None,
) -> None:
    """Figures as JSON (targets beside them) or one ``key: value (target ...)`` line each; ``lines``
    may print a figure its own way (a list of lines, or None for the usual line)."""
    if as_json:
        click.echo(json.dumps({**figures, "targets": targets}, indent=2))
        return
    for key, value in figures.items():
        own = lines(key, value) if lines is not None else None
        if own is not None:
            for line in own:
                echo(line)
            continue
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        target = f"   (target {targets[key]})" if key in targets else ""
        echo(f"{key:>{width}}: {shown}{target}")


T = TypeVar("T")


def each(rows: list[T], description: str, unit: str = "rows") -> Iterator[T]:
    """``rows`` one by one under the progress display of every long command (a bar on a terminal,
    a line now and then in a log): a quality benchmark on the default model runs for minutes."""
    from lmassist.progress import ProgressReporter  # kept out of the import of every bench command

    with ProgressReporter(description, unit, lazy=True) as progress:
        for i, row in enumerate(rows):
            yield row
            progress(i + 1, len(rows))


def print_table(title: str, rows: list[dict[str, Any]], as_json: bool, extra: dict[str, Any]) -> None:
    """Rows of scores (one per variant) as a table, then ``extra`` one ``key: value`` line each; or JSON."""
    if as_json:
        click.echo(json.dumps({**extra, "results": rows}, indent=2))
        return
    from rich.table import Table  # kept out of every command's start-up, as in commands.common

    table = Table(title=title)
    keys = list(rows[0])
    for k in keys:
        table.add_column(k, justify="left" if k == "variant" else "right")
    for r in rows:
        table.add_row(*(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys))
    out = console()
    # Figures are copied into notes and docs, often from a file or a pipe: there, where no screen
    # width applies, the table keeps its natural width instead of rich's 80 columns (which cut every
    # figure to "0.…").
    if not out.is_terminal:
        out.width = max(out.width, out.measure(table, options=out.options.update(max_width=1000)).maximum)
    out.print(table)
    for k, v in extra.items():
        out.print(f"{k}: {v}")


@contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """N processes that keep a core busy each, for the duration: a user's other work (a compile, a
    second model)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of ``lmassist ARGS`` in a fresh process, from the kernel's accounting."""
    code = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "lmassist", *args],
        capture_output=True, text=True, check=True,
    )
    return rusage_to_mb(int(out.stdout.strip()))


def run_child(args: list[str], what: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One measurement in a fresh process (``python -m lmassist.bench ARGS``), read back as JSON.

    A fresh process per configuration: OpenMP reads its wait policy once, when the library starts,
    and a portable build must be imported instead of the installed one.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "lmassist.bench", *args],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise LMAssistError(f"{what} failed: {lines[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(measure: Callable[[list[str]], dict[str, Any]], argv: list[str] | None = None) -> None:
    """The child's entry: print ``measure(argv)`` as one JSON line; an error is one line on stderr
    and an exit status, as for every lmassist command."""
    try:
        print(json.dumps(measure(sys.argv[1:] if argv is None else argv)))
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - the parent shows the last stderr line
        exit_for(e)


def dev_file(data: str, name: str) -> Path:
    """The dev set ``--data`` names: a file, or a folder holding ``name``; one line when it is not there."""
    path = Path(data).expanduser()
    if path.is_dir():
        path = path / name
    if not path.is_file():
        where = "" if path.is_absolute() else f" (from {Path.cwd()})"
        raise LMAssistError(f"no dev data at {path}{where}: give the file (or a folder holding {name}) with --data")
    return path


def data_option(name: str, what: str, default: str = EVAL_DIR) -> Callable[[Any], Any]:
    """``--data PATH``: the dev set ``name`` (a file, or a folder holding it), with the default shown."""
    return click.option(
        "--data", default=default, show_default=True, metavar="PATH",
        help=f"{what}, or a folder holding {name}. The default is relative to the working directory "
             "(a checkout beside shared/).",
    )
