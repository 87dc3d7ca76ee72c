"""``lmassist settings``: read and change the user's settings file without opening it."""

from __future__ import annotations

import json
from typing import Any

import click

from lmassist import hookimpl
from lmassist.config import Settings


def _parse(value: str) -> Any:
    """JSON when it parses (numbers, true/false, lists), else the plain string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@click.group()
def settings() -> None:
    """Show and change settings (stored as JSON in the config folder).

    \b
    Keys are dotted: BACKEND.KEY settings go to that backend when it loads a model.
      lmassist settings list
      lmassist settings set default_model llamacpp:smollm2-135m-instruct
      lmassist settings set llamacpp.n_ctx 8192
      lmassist settings set hf.device cuda
      lmassist settings unset hf.device
    """


@settings.command("list")
def list_settings() -> None:
    """Every setting and where the file is."""
    s = Settings()
    click.echo(f"# {s.path}")
    click.echo(json.dumps(s.values, indent=2, sort_keys=True))


@settings.command()
@click.argument("key")
def get(key: str) -> None:
    """Print one setting."""
    value = Settings().get(key)
    click.echo(json.dumps(value) if not isinstance(value, str) else value)


@settings.command("set")
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Set KEY to VALUE (JSON values such as 8192 or true are typed)."""
    Settings().set(key, _parse(value))
    click.echo(f"{key} = {value}")


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
