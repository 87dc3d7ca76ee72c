"""The ``lmassist`` command line: a click group that plugins extend through ``register_commands``.

Built-in commands live in ``lmassist/commands/`` and register through the same hook third-party
plugins use. Errors meant for users (:class:`LMAssistError`) print as one line; any other
exception prints one line too, and its traceback only with ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from lmassist import __version__
from lmassist.errors import INTERRUPTED, debug_enabled, exit_for
from lmassist.install_hints import missing_module_message
from lmassist.plugins import get_manager
from lmassist.start import open_chat

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# ``lmassist --help`` groups the commands by what people come to do, in the order of a first tour.
# Commands not named here still appear: a task (from any plugin) under "Tasks", another built-in
# command under "Other commands", a third-party plugin's command under "From plugins".
HELP_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Chat", ("ask", "chat", "templates")),
    ("Tasks", ("summarize", "translate", "sentiment", "qa", "tasks")),
    ("Models and plugins", ("models", "backends", "install", "uninstall", "plugins")),
    ("Your own models", ("train", "eval", "optimize")),
    ("History and settings", ("history", "docs", "settings")),
    ("Diagnostics", ("doctor", "bench", "eval-task")),
)


def help_section(name: str, cmd: click.Command) -> str:
    """The ``--help`` heading a command is listed under."""
    for title, names in HELP_SECTIONS:
        if name in names:
            return title
    if getattr(cmd, "lmassist_task", None) is not None:
        return "Tasks"
    module = getattr(cmd.callback, "__module__", "") or ""
    return "Other commands" if module == "lmassist" or module.startswith("lmassist.") else "From plugins"


class LMAssistGroup(click.Group):
    """Lists commands sorted by name; with ``sections`` (the root group) grouped under headings,
    in the order a newcomer meets them, so ``--help`` reads as a tour rather than plugin load order."""

    def __init__(self, *args: Any, sections: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sections = sections

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not self.sections:
            return super().format_commands(ctx, formatter)
        commands = [(name, cmd) for name in self.list_commands(ctx)
                    if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if not commands:
            return None
        order = {title: i for i, (title, _) in enumerate(HELP_SECTIONS)}
        order.update({"Other commands": len(order), "From plugins": len(order) + 1})
        rank = {name: i for _, names in HELP_SECTIONS for i, name in enumerate(names)}
        grouped: dict[str, list[tuple[str, click.Command]]] = {}
        for name, cmd in commands:
            grouped.setdefault(help_section(name, cmd), []).append((name, cmd))
        width = max(len(name) for name, _ in commands)
        limit = formatter.width - 6 - width
        for title in sorted(grouped, key=order.__getitem__):
            rows = sorted(grouped[title], key=lambda nc: (rank.get(nc[0], len(rank)), nc[0]))
            with formatter.section(title):
                # padded names: the descriptions line up across sections, not only within one
                formatter.write_dl([(name.ljust(width), cmd.get_short_help_str(limit)) for name, cmd in rows])
        return None


@click.group(cls=LMAssistGroup, sections=True, invoke_without_command=True, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="lmassist")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """lmassist: a local-first terminal chat and writing assistant.

    Run it with no command to open the chat app on the default model. Every task is also a
    plain command that reads files or stdin and writes stdout, so it scripts well:

    \b
      lmassist                               open the chat app
      lmassist ask "What is a haiku?"        one question, streamed to stdout
      git diff | lmassist ask "review this"  stdin is added as context
      lmassist models list                   models you can use, and where they are
      lmassist backends                      llama.cpp, transformers, in-house: which work here
      lmassist history search budget         full-text search over past chats
    """
    if ctx.invoked_subcommand is None:  # `lmassist --debug` with no command: the chat app, as bare `lmassist`
        open_chat()


@cli.group(cls=LMAssistGroup)
def bench() -> None:
    """Benchmarks: print speed figures measured side by side in one run."""


def build_cli() -> click.Group:
    """Let every plugin add its commands, then report plugins that failed to load."""
    manager = get_manager()
    manager.call("register_commands", cli=cli)
    for error in manager.errors:
        click.echo(f"Warning: {error}", err=True)
    return cli


def missing_extra_message(error: BaseException, args: list[str]) -> str | None:
    """For an optional dependency that is not installed (torch for ``train``, llama_cpp, ...), the one
    line that names the extra to install, fitted to this machine; None for any other error."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:  # also when a wrapper re-raised it
        seen.add(id(e))
        if isinstance(e, ModuleNotFoundError) and e.name:
            return missing_module_message(e.name, " ".join(args))
        e = e.__cause__ or e.__context__
    return None


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the command line: run it and turn failures into one-line errors (click's own
    here, every other as :func:`lmassist.errors.exit_status` maps them)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return build_cli().main(args=args, prog_name="lmassist", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(INTERRUPTED)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - the last line of defence against tracebacks
        exit_for(e, debug=debug_enabled(), explain=lambda error: missing_extra_message(error, args))
