"""``lmassist settings``: read and change the user's settings file without opening it.

Known keys are checked when they are set (type and range, with the allowed values in the error), so
a typo fails here, in a second, rather than as a crash the next time a model loads.
"""

from __future__ import annotations

import json
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import console, get_registry
from lmassist.config import SETTINGS, Settings, parse_setting
from lmassist.errors import LMAssistError


def _parse(value: str) -> Any:
    """JSON when it parses (numbers, true/false, lists), else the plain string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@click.group(invoke_without_command=True)
@click.pass_context
def settings(ctx: click.Context) -> None:
    """Show and change settings (stored as JSON in the config folder).

    With no subcommand, shows every known setting, its value, its default and where the value
    comes from.

    \b
    Keys are dotted: BACKEND.KEY settings go to that backend when it loads a model.
      lmassist settings
      lmassist settings set default_model llamacpp:smollm2-135m-instruct
      lmassist settings set tasks.translate.model llamacpp:gemma3-270m
      lmassist settings set llamacpp.n_ctx 8192
      lmassist settings set llamacpp.threads auto
      lmassist settings set hf.device cuda
      lmassist settings unset hf.device
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(show)


@settings.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(as_json: bool = False) -> None:
    """Every known setting: its value, default, allowed values and where it comes from."""
    s = Settings()
    rows = []
    for key, spec in SETTINGS.items():
        value = s.default_model if key == "default_model" else s.get(key)
        source = s.source(key)
        if value is None:
            value = spec.default
            if key in s.values:
                source = "default (stored value invalid)"
        rows.append({"key": key, "value": value, "default": spec.default, "source": source,
                     "allowed": spec.allowed(), "meaning": spec.meaning})
    for key in sorted(k for k in s.values if k not in SETTINGS):
        rows.append({"key": key, "value": s.values[key], "default": None, "source": "file",
                     "allowed": "free-form (not a built-in setting)", "meaning": ""})
    if as_json:
        click.echo(json.dumps({"file": str(s.path), "settings": rows}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("key", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("from")
    table.add_column("allowed", overflow="fold", min_width=20)
    for r in rows:
        table.add_row(escape(r["key"]), escape(_shown(r["value"])), escape(_shown(r["default"])),
                      escape(r["source"]), escape(r["allowed"]))
    out = console()
    need = sum(max(len(_shown(r[k])) for r in rows) for k in ("key", "value", "default")) + 20 + 8 + 4 * 2
    if out.width < need:
        out.width = need
    out.print(f"# {escape(str(s.path))}")
    out.print(table)


@settings.command("list")
def list_settings() -> None:
    """What the settings file holds, and where it is ('lmassist settings' shows the defaults too)."""
    s = Settings()
    click.echo(f"# {s.path}")
    click.echo(json.dumps(s.values, indent=2, sort_keys=True))


@settings.command()
@click.argument("key")
def get(key: str) -> None:
    """Print one stored setting (null when it is not set)."""
    value = Settings().get(key)
    click.echo(json.dumps(value) if not isinstance(value, str) else value)


@settings.command("set")
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Set KEY to VALUE, checked against the setting's type and range ('lmassist settings' lists them)."""
    spec = SETTINGS.get(key)
    if spec is not None and spec.kind == "model" and value.strip() != spec.default:
        if not value.strip():
            raise LMAssistError(f"give a model name for {key} (see 'lmassist models list'), "
                                f"or 'lmassist settings unset {key}' for the built-in default")
        stored = get_registry().resolve(value).full_name
    else:
        stored = parse_setting(key, value if key in SETTINGS else _parse(value))
    Settings().set(key, stored)
    click.echo(f"{key} = {_shown(stored)}")


@settings.command()
@click.argument("key")
def unset(key: str) -> None:
    """Remove a setting, going back to the default."""
    Settings().unset(key)
    click.echo(f"unset {key}")


@settings.command()
def path() -> None:
    """Print the settings file's path."""
    click.echo(str(Settings().path))


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(settings)
