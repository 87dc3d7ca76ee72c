"""``lmassist chat``: a line-by-line chat in the terminal, and what bare ``lmassist`` opens."""

from __future__ import annotations

import signal
import sys

import click

from lmassist import hookimpl
from lmassist.commands.ask import TurnResult, run_turn, say, write_out
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
)
from lmassist.conversation import ConversationLog
from lmassist.generation import parse_option_pairs
from lmassist.store import Store


def run_line_chat(
    model: str | None,
    system: str | None,
    options: tuple[tuple[str, str], ...],
    continue_: bool,
    cid: str | None,
    **load_settings: object,
) -> None:
    """Each turn is held, saved and stopped as ``ask`` does it (see :mod:`lmassist.commands.ask`):
    Ctrl+C stops a reply and the chat goes on; SIGTERM or SIGHUP stop it and leave, keeping it."""
    changes = parse_option_pairs(options)  # bad options fail before the model loads
    log = ConversationLog.resume(Store(), continue_, cid)
    if log.record is not None:
        model = model or log.record.model  # carry on with the model the conversation used
    llm = load_model(model, **load_settings)
    opts = llm.info.default_options.replace(**changes).validate()
    click.echo(f"Chatting with {llm.info.name}. Type 'exit' or press Ctrl+D to quit; Ctrl+C stops a reply.", err=True)
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            say("")
            return
        if line.strip() in ("exit", "quit"):
            return
        if not line.strip():
            continue
        result, stops = run_turn(log, llm, line, opts, system, write_out, _hard_stop_message)
        if result.text:
            _safe_newline()
        if result.error is not None and result.status == "error":
            say(f"Error: {result.error}")
        elif result.status == "interrupted":
            say("(interrupted)")
        if stops.signum is not None and stops.signum != signal.SIGINT:
            sys.exit(stops.exit_status)


def _hard_stop_message(result: TurnResult) -> str:
    return "\n(interrupted; the partial reply was kept in history)"


def _safe_newline() -> None:
    try:
        sys.stdout.write("\n")
        sys.stdout.flush()
    except OSError:
        pass


@click.command()
@model_option
@load_options
@click.option("-s", "--system", help="System prompt.")
@options_option
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", help="Continue the conversation with this id.")
def chat(system: str | None, options: tuple[tuple[str, str], ...], continue_: bool, cid: str | None,
         model: str | None, **load_settings: object) -> None:
    """Chat line by line in the terminal (no full-screen app), saving the conversation to history."""
    run_line_chat(model, system, options, continue_, cid, **load_settings)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(chat)
