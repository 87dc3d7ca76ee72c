"""Pieces every command shares: the model option, ``-O KEY VALUE``, reading stdin and files, sizes,
tables whose names are never cut, and the progress shown on stderr during long work."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from lmassist.config import progress_interval
from lmassist.generation import Model
from lmassist.textinput import MAX_INPUT_BYTES, decode_text, read_stdin, read_text_file  # noqa: F401 - re-exported

model_option = click.option(
    "-m", "--model", metavar="NAME",
    help="Model as BACKEND:NAME (see 'lmassist models list'); default: the configured default model.",
)

def _old_option_flag(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value:
        key, val = value[0]
        raise click.UsageError(
            f"-o means --output FILE everywhere in lmassist; generation options are -O/--option KEY VALUE "
            f"(here: -O {key} {val})", ctx
        )


def options_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-O/--option KEY VALUE``; ``-o`` stays ``--output`` in every command, so it only points here."""
    f = click.option(
        "-o", "old_options", type=(str, str), multiple=True, hidden=True, expose_value=False,
        callback=_old_option_flag,
    )(f)
    return click.option(
        "-O", "--option", "options", type=(str, str), multiple=True, metavar="KEY VALUE",
        help="Generation option, repeatable: max_new_tokens, temperature, top_p, top_k, "
        "repetition_penalty, stop, seed.",
    )(f)


def load_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--device``, ``--dtype`` and ``--trust-remote-code``: how a model is loaded, not how it samples."""
    f = click.option(
        "--trust-remote-code", is_flag=True, default=None,
        help="Allow a transformers model to run Python code shipped with it (off by default).",
    )(f)
    f = click.option(
        "--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]),
        help="Weights dtype (transformers/in-house; default: bf16/fp16 on GPU, fp32 on CPU).",
    )(f)
    return click.option("--device", help="Where to run: auto, cpu, cuda, cuda:N, mps (transformers/in-house).")(f)


def get_registry() -> Any:
    """The registry, with a warning on stderr for each plugin that broke while filling it."""
    from lmassist.plugins import get_manager
    from lmassist.registry import Registry

    manager = get_manager()
    seen = len(manager.errors)
    registry = Registry(manager)
    for error in manager.errors[seen:]:
        click.echo(f"Warning: {error}", err=True)
    return registry


def load_model(name: str | None, **settings: Any) -> Model:
    return get_registry().load(name, **settings)


def human_size(n: int | None) -> str:
    """Sizes in decimal SI units (1 kB = 1000 B), the unit pip, rich's download bar and disk makers
    use, so ``models list`` and the ``models pull`` bar print the same figure for the same file."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if round(size, 1) < 1000 or unit == "GB":  # 999,999 B is "1.0 MB", not "1000.0 kB"
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


# -- tables whose names are never cut -----------------------------------------------------------------


class NamesTable:
    """A rich table whose *name* columns (ids, model names: what people copy into the next command)
    are never cut, at any terminal width or when piped; *flexible* columns (titles, descriptions)
    give up their room instead, ending in an ellipsis (or wrapping, with ``wrap=True``).

    On a terminal the table fits its width when it can; when even the names do not fit, lines run
    past the edge and the terminal wraps them, the names still whole. Piped (not a terminal), nothing
    at all is cut: ``lmassist history list | grep`` sees every character.

    ::

        table = NamesTable()
        table.name_column("name", style="cyan")
        table.column("size", justify="right")
        table.column("description", flexible=True)
        table.add_row("llamacpp:smollm2-135m-instruct", "105.7 MB", "SmolLM2 135M ...")
        table.print(console())
    """

    GAP = 2  # box=None: one space of padding either side of each inner border

    def __init__(self, header_style: str = "bold") -> None:
        self.header_style = header_style
        self.columns: list[dict[str, Any]] = []
        self.rows: list[tuple[Any, ...]] = []

    def name_column(self, header: str, **kwargs: Any) -> None:
        """A column that is never cut or wrapped."""
        self.columns.append({"header": header, "role": "name", "kwargs": kwargs})

    def column(self, header: str, flexible: bool = False, min_width: int = 8, wrap: bool = False,
               **kwargs: Any) -> None:
        """An ordinary column; a ``flexible`` one shrinks (down to ``min_width``) to fit the terminal."""
        role = "flexible" if flexible else "fixed"
        self.columns.append({"header": header, "role": role, "min": min_width, "wrap": wrap, "kwargs": kwargs})

    def add_row(self, *cells: Any) -> None:
        self.rows.append(cells)

    def _natural_widths(self, con: Any) -> list[int]:
        from rich.measure import Measurement

        widths = []
        for i, col in enumerate(self.columns):
            cells = [col["header"], *(row[i] for row in self.rows)]
            widths.append(max(Measurement.get(con, con.options, c).maximum for c in cells))
        return widths

    def print(self, con: Any) -> None:
        """Print on ``con``, widening it past the terminal only when the names need it."""
        from rich.console import Console
        from rich.table import Table

        natural = self._natural_widths(Console(width=10_000, highlight=False, color_system=None))
        gaps = self.GAP * max(len(self.columns) - 1, 0)
        widths = list(natural)
        if con.is_terminal:
            flex = [i for i, c in enumerate(self.columns) if c["role"] == "flexible"]
            fixed = sum(w for i, w in enumerate(natural) if i not in flex) + gaps
            room = con.width - fixed
            wanted = sum(natural[i] for i in flex)
            if flex and wanted > room:
                floor = {i: min(natural[i], self.columns[i]["min"]) for i in flex}
                room = max(room, sum(floor.values()))
                for i in flex:  # share the room in proportion to what each would like
                    widths[i] = max(floor[i], room * natural[i] // max(wanted, 1))
        total = sum(widths) + gaps
        table = Table(box=None, header_style=self.header_style, pad_edge=False, show_edge=False)
        for col, width in zip(self.columns, widths, strict=True):
            kw = dict(col["kwargs"])
            if col["role"] == "name":
                table.add_column(col["header"], no_wrap=True, overflow="fold", min_width=width, **kw)
            elif col["role"] == "flexible":
                table.add_column(col["header"], no_wrap=not col["wrap"], overflow="ellipsis",
                                 max_width=width, **kw)
            else:
                table.add_column(col["header"], no_wrap=True, min_width=width, **kw)
        for row in self.rows:
            table.add_row(*row)
        if total > con.width:
            con = Console(file=con.file, width=total, highlight=False, force_terminal=con.is_terminal,
                          color_system=con.color_system or None, soft_wrap=False)
        con.print(table)


# -- progress on stderr: a bar on a terminal, a plain line every few seconds otherwise ---------------


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressReporter:
    """The one progress display of every long command (task commands, ``models pull``).

    On a terminal: a rich bar on stderr (counts, or bytes in SI units for downloads). Otherwise (a pipe,
    a log file, CI): a plain line every :func:`progress_interval` seconds, from a timer thread so that a
    slow step still shows the work is alive, e.g. ``sentiment: 40/100 (40%), 3.1/s, ETA 19 s``; nothing
    for work shorter than one interval, and a closing line when progress lines were printed.

    Use as a context manager whose value is the ``progress(done, total)`` callback, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(self, description: str, unit: str = "", *, download: bool = False, transient: bool = True,
                 lazy: bool = False, interval: float | None = None, stream: Any = None) -> None:
        self.description = description
        self.unit = unit
        self.download = download
        self.transient = transient
        self.lazy = lazy  # draw the terminal bar at the first update, so a failure before it prints one line
        self.interval = progress_interval() if interval is None else interval
        self.stream = stream
        self.done = 0
        self.total: int | None = None
        self.info = ""
        self.started_at = 0.0
        self._first: tuple[float, int] | None = None  # (time, done) of the first update: rates start there
        self._bar: Any = None
        self._task_id: Any = None
        self._thread: Any = None
        self._stop: Any = None
        self._lines = 0

    def _out(self) -> Any:
        return self.stream if self.stream is not None else sys.stderr

    # -- the callback ------------------------------------------------------------------------------

    def update(self, done: int, total: int | None = None, info: str | None = None) -> None:
        """``info`` is a short status shown after the counts (``loss 2.31  ppl 10.1``), kept until changed."""
        self.done, self.total = done, total
        if info is not None:
            self.info = info
        if self._first is None:
            self._first = (time.monotonic(), done)
        if self._bar is not None:
            if not self._bar.live.is_started:
                self._bar.start()
            self._bar.update(self._task_id, completed=done, total=total, info=self.info)

    __call__ = update

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> Callable[[int, int | None], None]:
        import threading

        self.started_at = time.monotonic()
        out = self._out()
        if out is not None and out.isatty():
            self._bar = self._rich_bar()
            self._task_id = self._bar.add_task(self.description, total=None, info=self.info)
            if not self.lazy:
                self._bar.start()
        elif out is not None and self.interval > 0:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._tick, name="lmassist-progress", daemon=True)
            self._thread.start()
        return self.update

    def stop(self, finished: bool = True) -> None:
        """Remove the bar; after plain progress lines, say how it ended (not on failure: the error
        line is then the last word)."""
        if self._bar is not None:
            if self._bar.live.is_started:
                self._bar.stop()
            self._bar = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._lines and finished:
                self._line(self.final_line())

    def __enter__(self) -> Callable[[int, int | None], None]:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop(finished=exc_type is None)

    # -- what is shown -----------------------------------------------------------------------------

    def _rich_bar(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        counts = [DownloadColumn(), TransferSpeedColumn()] if self.download else [MofNCompleteColumn()]
        return Progress(
            TextColumn("{task.description}"), BarColumn(), *counts, TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=Console(file=self._out(), highlight=False), transient=self.transient,
        )

    def _amount(self, n: float) -> str:
        return human_size(int(n)) if self.download else f"{int(n)}"

    def _rate(self, now: float) -> float | None:
        """Steps per second since the first update (what came before it, a model load say, is not
        stepping); with one update so far, since the start, which is all there is to go on."""
        if self._first is None:
            return None
        t0, d0 = self._first
        if self.done <= d0:
            t0, d0 = self.started_at, 0
        if now - t0 <= 0 or self.done <= d0:
            return None
        return (self.done - d0) / (now - t0)

    def status_line(self, now: float | None = None) -> str:
        """``sentiment: 40/100 lines (40%), 3.1/s, ETA 19 s`` (what is known of it)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.started_at
        unit = f" {self.unit}" if self.unit else ""
        if self._first is None:
            return f"{self.description}: working, {_duration(elapsed)} elapsed"
        parts = []
        if self.total:
            pct = 100 * self.done / self.total
            parts.append(f"{self._amount(self.done)}/{self._amount(self.total)}{unit} ({pct:.0f}%)")
        else:
            parts.append(f"{self._amount(self.done)}{unit} done")
        rate = self._rate(now)
        if rate:
            if self.download:
                parts.append(f"{human_size(int(rate))}/s")
            else:
                parts.append(f"{rate:.1f}/s" if rate >= 1 else f"{rate:.2f}/s")
            if self.total and self.total > self.done:
                parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        else:
            parts.append(f"{_duration(elapsed)} elapsed")
        if self.info:
            parts.append(self.info)
        return f"{self.description}: " + ", ".join(parts)

    def final_line(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        amount = self._amount(self.done)
        if self.total:
            amount = f"{amount}/{self._amount(self.total)}"
        return f"{self.description}: {amount}{unit} in {_duration(time.monotonic() - self.started_at)}"

    def _line(self, text: str) -> None:
        out = self._out()
        try:
            out.write(text + "\n")
            out.flush()
        except (OSError, ValueError):  # stderr closed or gone: progress is not worth an error
            pass

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._lines += 1
            self._line(self.status_line())


def progress_bar(description: str) -> tuple[ProgressReporter, Callable[[int, int | None], None]]:
    """A download's progress on stderr (bytes, SI units) and the ``progress(done, total)`` callback
    that drives it; call ``.stop()`` on the first value when done."""
    bar = ProgressReporter(description, download=True, transient=False, lazy=True)
    return bar, bar.start()
