"""Pieces every command shares: the model option, ``-O KEY VALUE``, reading stdin and files, sizes,
tables whose names are never cut, and (from :mod:`lmassist.progress`) the progress shown on stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lmassist.generation import Model
from lmassist.plugins import get_manager
from lmassist.progress import ProgressReporter, human_size, progress_bar  # noqa: F401 - re-exported
from lmassist.registry import Registry
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
    manager = get_manager()
    seen = len(manager.errors)
    registry = Registry(manager)
    for error in manager.errors[seen:]:
        click.echo(f"Warning: {error}", err=True)
    return registry


def load_model(name: str | None, **settings: Any) -> Model:
    return get_registry().load(name, **settings)


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
