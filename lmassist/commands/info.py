"""``lmassist backends`` and ``lmassist plugins``: what is installed, and what is broken."""

from __future__ import annotations

import json

import click

from lmassist import hookimpl
from lmassist.commands.common import console, get_registry


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def backends(as_json: bool) -> None:
    """Each backend, whether it works here, its device, and how to install it if not."""
    reg = get_registry()
    rows = []
    for b in reg.backends.values():
        reason = b.unavailable_reason()
        rows.append({
            "name": b.name, "available": reason is None, "device": None if reason else b.device(),
            "reason": reason, "install_hint": b.install_hint if reason else None, "description": b.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("backend", "status", "device", "description"):
        table.add_column(col)
    from rich.markup import escape

    for r in rows:
        hint = f"; {r['install_hint']}" if r["install_hint"] else ""
        status = "[green]available[/]" if r["available"] else f"[yellow]unavailable[/]: {escape(r['reason'] + hint)}"
        table.add_row(r["name"], status, escape(r["device"] or "-"), escape(r["description"]))
    console().print(table)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """Installed plugins: name, version, hooks they implement, and load errors."""
    from lmassist.plugins import get_manager

    manager = get_manager()
    get_registry()  # fills in errors raised by register_backends / register_models hooks
    rows = [
        {"name": p.name, "version": p.version, "builtin": p.builtin, "hooks": p.hooks, "error": p.error}
        for p in manager.info.values()
        if show_all or not p.builtin
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No plugins installed. Install one with 'lmassist install NAME' (see 'lmassist plugins --all' for built-ins).")
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
