"""The ``lmassist`` command line: a click group that plugins extend through ``register_commands``.

Built-in commands live in ``lmassist/commands/`` and register through the same hook third-party
plugins use. Errors meant for users (:class:`LMAssistError`) print as one line; any other
exception prints one line too, and its traceback only with ``--debug``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from lmassist import __version__
from lmassist.generation import LMAssistError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def debug_enabled() -> bool:
    return "--debug" in sys.argv[1:] or os.environ.get("LMASSIST_DEBUG", "") not in ("", "0")


class LMAssistGroup(click.Group):
    """Lists commands in the order they were added (the tour order), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=LMAssistGroup, invoke_without_command=True, context_settings=CONTEXT_SETTINGS)
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
        from lmassist.launch import open_chat

        open_chat()


@cli.group(cls=LMAssistGroup)
def bench() -> None:
    """Benchmarks: print speed figures measured side by side in one run."""


def build_cli() -> click.Group:
    """Let every plugin add its commands, then report plugins that failed to load."""
    from lmassist.plugins import get_manager

    manager = get_manager()
    manager.call("register_commands", cli=cli)
    for error in manager.errors:
        click.echo(f"Warning: {error}", err=True)
    return cli


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script: run the CLI and turn failures into one-line errors."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return build_cli().main(args=args, prog_name="lmassist", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (``lmassist ask ... | head``): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except LMAssistError as e:
        if debug_enabled():
            raise
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug_enabled():
            raise
        click.echo(f"Error: {type(e).__name__}: {e} (run with --debug for details)", err=True)
        sys.exit(1)
