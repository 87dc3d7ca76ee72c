"""``lmassist backends`` and ``lmassist plugins``: what is installed, and what is broken."""

from __future__ import annotations

import json

import click

from lmassist import hookimpl
from lmassist.commands.common import NamesTable, console, get_registry
from lmassist.install_hints import backend_install_hint
from lmassist.plugins import get_manager


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def backends(as_json: bool) -> None:
    """Each backend, whether it works here, its device, and how to install it if not.

    Install hints fit the machine: without an NVIDIA GPU, torch comes from PyTorch's CPU index
    first (a few hundred MB instead of several GB of CUDA libraries).
    """
    reg = get_registry()
    rows = []
    for b in reg.backends.values():
        reason = b.unavailable_reason()
        rows.append({
            "name": b.name, "available": reason is None, "device": None if reason else b.device(),
            "reason": reason, "install_hint": backend_install_hint(b.name, b.install_hint) if reason else None,
            "description": b.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.markup import escape

    table = NamesTable()
    table.name_column("backend")
    table.column("status", flexible=True, min_width=12, wrap=True)
    table.column("device")
    table.column("description", flexible=True, min_width=20, wrap=True)
    for r in rows:
        status = "[green]available[/]" if r["available"] else f"[yellow]unavailable[/]: {escape(r['reason'])}"
        table.add_row(escape(r["name"]), status, escape(r["device"] or "-"), escape(r["description"]))
    out = console()
    table.print(out)
    hints = [r for r in rows if r["install_hint"]]
    if hints:
        # Below the table, one whole line each: a command is copied, so it is never wrapped or cut.
        click.echo("\nTo install:")
        width = max(len(r["name"]) for r in hints)
        for r in hints:
            click.echo(f"  {r['name'] + ':':<{width + 1}} {r['install_hint']}")


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """Installed plugins: name, version, hooks they implement, and load errors."""
    manager = get_manager()
    get_registry()  # fills in errors raised by register_backends / register_models hooks
    rows = [
        {"name": p.name, "version": p.version, "builtin": p.builtin, "hooks": p.hooks, "error": p.error,
         "errors": [str(e) for e in manager.errors if e.plugin == p.name]}
        for p in manager.info.values()
        if show_all or not p.builtin
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No plugins installed. Install one with 'lmassist install PATH' (e.g. ./plugins/lmassist-proofread; a PyPI name or URL asks first) (see 'lmassist plugins --all' for built-ins).")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("plugin", "version", "hooks", "status"):
        table.add_column(col)
    for r in rows:
        status = f"[red]{escape(r['error'])}[/]" if r["error"] else "[green]ok[/]"
        table.add_row(escape(r["name"]), r["version"] or ("built-in" if r["builtin"] else "-"), ", ".join(r["hooks"]), status)
    console().print(table)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(backends)
    cli.add_command(plugins)
