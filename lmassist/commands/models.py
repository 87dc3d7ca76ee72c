"""``lmassist models``: list, pull, add, remove and choose the default model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lmassist import hookimpl
from lmassist.bench.common import EVAL_DIR
from lmassist.commands.common import console, get_registry, human_size, model_option, progress_bar
from lmassist.errors import LMAssistError
from lmassist.modelfiles import add_gguf, gone_message, removable, remove_gguf
from lmassist.task_models import explain_choice, write_table


@click.group()
def models() -> None:
    """Models you can use: list them, pull the default, add your own GGUF files.

    \b
    Examples:
      lmassist models list
      lmassist models pull smollm2-135m-instruct
      lmassist models add ~/Downloads/qwen2.5-0.5b-instruct-q4_k_m.gguf --name qwen-0.5b
      lmassist models default llamacpp:qwen-0.5b
      lmassist models rank translate --write
    """


@models.command("list")
@click.option("--backend", help="Only this backend's models (a server's backend is asked when named).")
@click.option("--remote", is_flag=True, help="Also ask the servers of remote backends (e.g. openai) for their models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(backend: str | None, remote: bool, as_json: bool) -> None:
    """Every model, its backend, size on disk, context length and whether it is installed.

    Backends that run models on a server (the lmassist-openai plugin) are not asked unless you
    name them (--backend NAME) or pass --remote: listing stays on this machine.
    """
    reg = get_registry()
    if backend:
        reg.backend(backend)
    specs = reg.models(backend, remote=remote)
    default = reg.settings.default_model
    if as_json:
        rows = [
            {"name": s.full_name, "backend": s.backend, "installed": s.installed, "size_bytes": s.size_bytes,
             "context_length": s.context_length, "source": s.source, "description": s.description,
             "default": s.full_name == default}
            for s in specs
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    # Names are what people copy: never cut them, whatever the width (piped output included);
    # the description gives way first.
    width = max((len(s.full_name) + len(" (default)") for s in specs), default=4)
    table.add_column("name", no_wrap=True, min_width=width)
    table.add_column("installed")
    table.add_column("size", no_wrap=True)
    table.add_column("context", no_wrap=True)
    table.add_column("description", overflow="fold")
    usable = {name: b.unavailable_reason() is None for name, b in reg.backends.items()}
    for s in specs:
        mark = " (default)" if s.full_name == default else ""
        installed = ("yes" if usable.get(s.backend, True) else "yes (backend not installed)") if s.installed else "no"
        table.add_row(
            escape(s.full_name + mark), installed, human_size(s.size_bytes),
            str(s.context_length or "-"), escape(s.description),
        )
    out = console()
    # Wide enough that no name is ever cut (a narrow terminal wraps the line instead).
    need = width + 9 + 8 + 9 + 12 + 2 * 4
    if out.width < need:
        out.width = need
    out.print(table)
    if any(not s.installed for s in specs):
        console().print("\nInstall a model with: lmassist models pull NAME")
    if not (backend or remote):
        for name in reg.remote_backends():
            click.echo(f"{name}: models on a server are listed only when asked: lmassist models list --backend {name}")


@models.command()
@click.argument("name")
def pull(name: str) -> None:
    """Download a model so it works offline (checksum verified, written atomically)."""
    reg = get_registry()
    spec = reg.resolve(name)
    if spec.pull is None:
        if spec.installed:
            click.echo(f"{spec.full_name} is already installed ({spec.source})")
            return
        if spec.backend == "llamacpp":
            gone = gone_message(spec.name)
            if gone:
                raise LMAssistError(gone)
        raise LMAssistError(f"{spec.full_name} cannot be pulled; add a local file with 'lmassist models add'")
    if spec.installed and not spec.details.get("always_pull"):
        click.echo(f"{spec.full_name} is already installed ({spec.source})")
        return
    terms = spec.details.get("terms")
    if terms:
        click.echo(f"Note: {terms}", err=True)
    bar, update = progress_bar(f"pulling {spec.full_name}")
    try:
        spec.pull(update)
    finally:
        bar.stop()
    click.echo(f"installed {spec.full_name}")
    if terms and spec.details.get("terms_path"):
        click.echo(f"The terms of use are saved at {spec.details['terms_path']}", err=True)


@models.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Name to use (default: the file name without .gguf).")
@click.option("--copy", is_flag=True, help="Copy the file into lmassist's models folder instead of referring to it.")
def add(path: Path, name: str | None, copy: bool) -> None:
    """Add a GGUF file you already have as llamacpp:NAME."""
    added, where = add_gguf(path, name, copy=copy)
    click.echo(f"added llamacpp:{added} ({where})")


@models.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Delete a pulled model's file without asking.")
def remove(name: str, yes: bool) -> None:
    """Forget an added model (its file stays), or delete a pulled one (asks first)."""
    short = name.split(":", 1)[1] if name.startswith("llamacpp:") else name
    what = removable(short)
    if what is None:
        raise LMAssistError(f"no added or pulled model named {name!r}")
    action, path = what
    if action == "delete" and not yes:
        size = human_size(path.stat().st_size) if path.exists() else "?"
        if not sys.stdin.isatty():
            raise LMAssistError(f"removing llamacpp:{short} deletes {path} ({size}); add --yes to confirm")
        if not click.confirm(f"Delete {path} ({size})?", default=False):
            raise LMAssistError("nothing removed")
    gone = remove_gguf(short)
    if gone is None:
        raise LMAssistError(f"no added or pulled model named {name!r}")
    click.echo(f"{'forgot' if action == 'forget' else 'removed'} llamacpp:{short} ({gone})")


@models.command()
@click.argument("name", required=False)
def default(name: str | None) -> None:
    """Show the default model, or set it to NAME."""
    reg = get_registry()
    if name is None:
        click.echo(reg.settings.default_model)
        return
    if not name.strip():
        raise LMAssistError("give a model name (see 'lmassist models list'), or none to show the default")
    spec = reg.resolve(name)
    reg.settings.set("default_model", spec.full_name)
    click.echo(f"default model: {spec.full_name}")


@models.command()
@click.argument("task")
@model_option
def which(task: str, model: str | None) -> None:
    """The model TASK runs with, and why: -m, the tasks.TASK.model setting, or the measured table.

    \b
    Examples:
      lmassist models which translate
      lmassist settings set tasks.sentiment.model llamacpp:smollm2-135m-instruct
      lmassist models which sentiment
    """
    reg = get_registry()
    reg.task(task)
    name, why = explain_choice(task, model, reg)
    click.echo(f"{reg.resolve(name).full_name}  ({why})")


@models.command()
@click.argument("tasks", nargs=-1, metavar="[TASK]...")
@click.option("--models", "names", metavar="A,B", help="Measure these models (default: every installed local model).")
@click.option("--data", default=EVAL_DIR, show_default=True, metavar="DIR",
              help="Folder of the dev sets (relative to the working directory: a checkout beside shared/).")
@click.option("--limit", type=int, help="First N rows of each dev set (default: the table's own count per task).")
@click.option("--write", is_flag=True, help="Store the ranking in your config folder; task commands then use it.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the ranking to this file instead (e.g. lmassist/task_models.json to ship it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rank(tasks: tuple[str, ...], names: str | None, data: str, limit: int | None, write: bool,
         out: Path | None, as_json: bool) -> None:
    """Measure which installed model does each task best, as eval-task does, and rank them.

    Task commands run the best able model unless you give -m or set tasks.TASK.model; with --write
    they use this measurement instead of the shipped one. A model is able when it beats the task's
    baseline by the margin shown.

    \b
    Examples:
      lmassist models rank                       # every task, every installed model
      lmassist models rank translate --models llamacpp:gemma3-270m,llamacpp:smollm2-135m-instruct
      lmassist models rank sentiment --limit 100 --write
    """
    from lmassist.bench.rank import TASK_EVALS, measure, ranking, rows_for

    chosen = list(tasks) or list(TASK_EVALS)
    loaded = [rows_for(t, data, limit) for t in chosen]  # a missing dev set fails before any model loads
    reg = get_registry()
    specs = [reg.resolve(n.strip()) for n in names.split(",") if n.strip()] if names else [
        s for s in reg.models() if s.installed and reg.backends[s.backend].unavailable_reason() is None]
    results: dict[str, list] = {t: [] for t in chosen}
    for spec in specs:
        model = reg.load(spec.full_name)
        try:
            for task, (_, rows) in zip(chosen, loaded, strict=True):
                m = measure(task, spec.full_name, model, rows)
                results[task].append(m)
                click.echo(f"{task}: {spec.full_name} {m.score:.4g} (baseline {m.baseline:.4g}, "
                           f"{'able' if m.able else 'unable'})", err=True)
        finally:
            model.close()
    rankings = [ranking(t, results[t], path, len(rows), limit) for t, (path, rows) in zip(chosen, loaded, strict=True)]
    _show_rankings(rankings, as_json)
    if write or out:
        click.echo(f"wrote {write_table(rankings, out)}", err=True)


def _show_rankings(rankings: list, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({r.task: r.to_dict() for r in rankings}, indent=2))
        return
    for r in rankings:
        click.echo(f"{r.task} ({r.metric} on {r.rows} rows of {r.data}; baseline: {r.baseline_name}, "
                   f"able: +{r.min_gain:g})")
        for n, m in enumerate(r.models, 1):
            click.echo(f"  {n}. {m.model:<40} {m.score:8.4g}  baseline {m.baseline:.4g}  "
                       f"{'able' if m.able else 'unable'}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(models)
