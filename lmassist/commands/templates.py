"""``lmassist templates``: save, list, show, edit and remove named prompt templates.

A thin face on :mod:`lmassist.templates`, which holds the files, the checks, the plugins' templates
and the merge with explicit flags; ``ask -t`` and ``chat -t`` use it through the same module.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from lmassist import hookimpl
from lmassist.attachments import collect
from lmassist.commands.common import (
    NamesTable,
    console,
    get_registry,
    options_option,
    read_stdin,
)
from lmassist.config import atomic_write_text, valid_name
from lmassist.errors import LMAssistError
from lmassist.generation import parse_option_pairs
from lmassist.plugins import get_manager
from lmassist.templates import (
    USER,
    Catalog,
    Template,
    catalog,
    parse_text,
    read_text,
    save,
    template_file,
    templates_dir,
)


def _catalog(warn_broken: bool = False) -> Catalog:
    """All templates, with a warning line for each plugin problem met (and, for a listing, each
    broken file: a command about one template names only that one's problem, as its error)."""
    manager = get_manager()
    seen = len(manager.errors)
    found = catalog(manager)
    for name, error in found.broken.items() if warn_broken else ():
        fix = f"fix it with: lmassist templates edit {name}" if _is_name(name) else "rename the file"
        click.echo(f"Warning: {error} (skipped; {fix})", err=True)
    for error in manager.errors[seen:]:
        click.echo(f"Warning: {error}", err=True)
    return found


def _is_name(name: str) -> bool:
    try:
        return bool(valid_name(name, "template name"))
    except LMAssistError:
        return False


def _origin(t: Template) -> str:
    if t.origin != USER:
        return f"plugin {t.origin}"
    return f"user (in place of plugin {t.hides}'s)" if t.hides else "user"


def _complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        return [n for n in catalog().templates if n.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []


template_option = click.option(
    "-t", "--template", metavar="NAME", shell_complete=_complete_names,
    help="Use a saved template (see 'lmassist templates list'); -s, -m, -O and -f given here win over it.",
)
"""``-t/--template NAME`` for ``ask`` and ``chat``: one spelling, help text and completion. Resolve
it with :func:`lmassist.templates.apply_template` (unknown names fail there, in one line)."""


class _InOrder(click.Group):
    """Subcommands listed as a user meets them (add first), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_InOrder)
def templates() -> None:
    """Named prompt templates: a system prompt, options, a model and files under one name.

    A template is one JSON file in the config folder ('lmassist templates path'),
    readable and editable by hand. Plugins can add templates too; your own file
    of the same name wins, and removing it brings the plugin's back. Flags given
    with -t win over the template's values.

    \b
      lmassist templates add reviewer -s "You review code tersely." -O temperature 0.2
      lmassist templates add notes -s "Answer from my notes." -f ~/notes/todo.md -m gemma3-270m
      lmassist ask -t reviewer "Is this function too long?"
      lmassist chat -t notes
      lmassist templates list
      lmassist templates edit reviewer       (opens $VISUAL or $EDITOR)
    """


def _system(value: str | None) -> str | None:
    if value != "-":
        return value
    piped = read_stdin()
    if piped is None or not piped.strip():
        raise LMAssistError("-s - reads the system prompt from stdin, but nothing was piped")
    return piped.strip()


def _attachment(path: str) -> str:
    """A path kept absolute (the template is used from other folders), read once now as ``ask -f``
    reads it, so a binary file, a device or a folder with nothing readable fails at ``add``, not at
    every use."""
    if path == "-":
        raise LMAssistError("-f - (stdin) cannot be saved in a template; pipe it to 'ask -t' instead")
    full = os.path.abspath(os.path.expanduser(path))
    if not (os.path.exists(full) or (any(c in full for c in "*?[") and glob.glob(full, recursive=True))):
        raise LMAssistError(f"no such file, folder or matching glob: {path}")
    collect([full])
    return full


@templates.command()
@click.argument("name")
@click.option("-s", "--system", metavar="TEXT", help="The system prompt ('-': read it from stdin).")
@options_option
@click.option("-m", "--model", metavar="NAME",
              help="The model the template uses unless -m is given with it (see 'lmassist models list').")
@click.option("-f", "--attach", "attach", multiple=True, metavar="PATH",
              help="A file, folder or glob attached on every use (repeatable).")
@click.option("--description", default="", help="One line shown by 'templates list'.")
@click.option("--force", is_flag=True, help="Replace your template of this name.")
def add(name: str, system: str | None, options: tuple[tuple[str, str], ...], model: str | None,
        attach: tuple[str, ...], description: str, force: bool) -> None:
    """Save a template NAME.

    \b
      lmassist templates add haiku -s "Answer in a haiku." -O temperature 1.1
      lmassist templates add release -s - < prompts/release.txt --description "release notes"
      lmassist templates add haiku -s "Answer in two haikus." --force
    """
    valid_name(name, "template name")
    path = template_file(name)
    if path.exists() and not force:
        raise LMAssistError(f"template {name!r} exists ({path}); replace it with --force, or change it with: "
                            f"lmassist templates edit {name}")
    changes = parse_option_pairs(options)
    if model:
        model = get_registry().resolve(model).full_name  # a typo fails now, with suggestions
    template = Template(name=name, system=_system(system), options=changes, model=model,
                        attachments=tuple(_attachment(p) for p in attach), description=description)
    parse_text(name, json.dumps(template.to_dict()), f"template {name!r}")  # the checks a file gets
    hidden = _catalog().plugins.get(name)
    click.echo(f"Saved template {name} in {save(template)}")
    if hidden is not None:
        click.echo(f"It takes the place of plugin {hidden.origin}'s template {name} for you; "
                   f"'lmassist templates remove {name}' brings that one back.")
    click.echo(f'Use it: lmassist ask -t {name} "..."')


@templates.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: every template's fields, origin and file.")
def list_(as_json: bool) -> None:
    """Every template: yours and the plugins'.

    \b
      lmassist templates list
      lmassist templates list --json
    """
    found = _catalog(warn_broken=not as_json)
    if as_json:
        click.echo(json.dumps({"templates": [t.summary() for t in found.templates.values()],
                               "broken": {n: str(e) for n, e in found.broken.items()}},
                              indent=2, ensure_ascii=False))
        return
    if not found.templates:
        click.echo("No templates yet. Create one: lmassist templates add NAME -s \"a system prompt\"")
        return
    table = NamesTable()
    table.name_column("name", style="cyan")
    table.column("from", flexible=True, min_width=4)
    table.column("model")
    table.column("description", flexible=True)
    for t in found.templates.values():
        about = t.description or " ".join((t.system or "").split())
        table.add_row(t.name, _origin(t), t.model or "-", about or "-")
    table.print(console())


@templates.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, as_json: bool) -> None:
    """Show template NAME: where it comes from and what it sets.

    \b
      lmassist templates show reviewer
    """
    t = _catalog().get(name)
    if as_json:
        click.echo(json.dumps(t.summary(), indent=2, ensure_ascii=False))
        return
    options = ", ".join(f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in t.options.items())
    rows = [("name", t.name), ("from", _origin(t)), ("file", str(t.path) if t.path else "-"),
            ("description", t.description or "-"), ("model", t.model or "- (the default model)"),
            ("options", options or "-"), ("attachments", ", ".join(t.attachments) or "-")]
    for key, value in rows:
        click.echo(f"{key + ':':13} {value}")
    click.echo("system:")
    click.echo("\n".join(f"  {line}" for line in (t.system or "-").splitlines()))


def _start_text(name: str) -> str:
    """What the editor opens with: the user's file as written (even broken: that is what needs
    fixing), or a plugin's template as a new file of the user's."""
    path = template_file(name)
    found = _catalog()
    if name in found.broken or (name in found.templates and found.templates[name].origin == USER):
        return read_text(path)
    return json.dumps(found.get(name).to_dict(), indent=2, ensure_ascii=False) + "\n"


def _run_editor(path: Path) -> None:
    try:
        click.edit(filename=str(path))
    except click.ClickException as e:
        raise LMAssistError(f"{e.format_message()} (set $VISUAL or $EDITOR to an editor that works)") from None


@templates.command()
@click.argument("name")
def edit(name: str) -> None:
    """Open template NAME in $VISUAL or $EDITOR; it is checked before it is saved.

    A plugin's template opens as a copy that becomes yours. An edit that breaks the
    template is refused with the reason, the previous version is kept, and your
    edit is kept in a file next to it so nothing you typed is lost.

    \b
      lmassist templates edit reviewer
      EDITOR=nano lmassist templates edit reviewer
    """
    valid_name(name, "template name")
    text = _start_text(name)
    path = template_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft_name = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".edit.json")
    draft = Path(draft_name)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    _run_editor(draft)
    edited = draft.read_text(encoding="utf-8", errors="replace")
    if edited == text:
        draft.unlink()
        click.echo(f"No change to template {name}.")
        return
    try:
        parse_text(name, edited, f"template file {path}", path)
    except LMAssistError as e:
        kept = "the previous version is kept" if path.exists() else "nothing was saved"
        raise LMAssistError(f"{e}; {kept} (your edit is in {draft})") from None
    atomic_write_text(path, edited)
    draft.unlink()
    click.echo(f"Saved template {name} in {path}")


@templates.command()
@click.argument("name")
def remove(name: str) -> None:
    """Delete your template NAME (a plugin's template of that name is used again).

    \b
      lmassist templates remove reviewer
    """
    valid_name(name, "template name")
    path = template_file(name)
    found = _catalog()
    if not path.is_file():
        template = found.get(name)  # unknown: the error with suggestions
        raise LMAssistError(f"template {name!r} comes from plugin {template.origin}; it cannot be removed "
                            f"(uninstall the plugin: lmassist uninstall {template.origin})")
    try:
        path.unlink()
    except OSError as e:
        raise LMAssistError(f"cannot remove {path}: {e.strerror or e}") from None
    click.echo(f"Removed template {name} ({path})")
    if name in found.plugins:
        click.echo(f"Plugin {found.plugins[name].origin}'s template {name} is used again.")


@templates.command()
def path() -> None:
    """Print the folder that holds your template files.

    \b
      ls "$(lmassist templates path)"
    """
    click.echo(str(templates_dir()))


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(templates)
