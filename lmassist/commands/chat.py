"""``lmassist chat``: a line-by-line chat in the terminal, and what bare ``lmassist`` opens."""

from __future__ import annotations

import re
import shlex
import signal
import sys

import click

from lmassist import hookimpl
from lmassist.attachments import collect
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
)
from lmassist.commands.turn import TurnResult, run_turn, say, write_out
from lmassist.commands.turn_setup import attach_options, prepare, show_attached
from lmassist.conversation import ConversationLog
from lmassist.generation import LMAssistError, parse_option_pairs
from lmassist.store import Store


def run_line_chat(
    model: str | None,
    system: str | None,
    options: tuple[tuple[str, str], ...],
    continue_: bool,
    cid: str | None,
    files: tuple[str, ...] = (),
    template: str | None = None,
    **load_settings: object,
) -> None:
    """Each turn is held, saved and stopped as ``ask`` does it (see :mod:`lmassist.commands.ask`):
    Ctrl+C stops a reply and the chat goes on; SIGTERM or SIGHUP stop it and leave, keeping it.
    ``-f`` files (and ``/attach PATH`` typed in the chat) go with the next message and stay in view
    for the rest of the conversation."""
    if "-" in files:
        raise LMAssistError("the chat reads your messages from stdin, so -f - cannot attach it; "
                            "use lmassist ask -f - instead")
    changes = parse_option_pairs(options)  # bad options, files and templates fail before the model loads
    setup = prepare(template, system, model, changes, files)
    show_attached(setup.attachments, setup.skipped)
    log = ConversationLog.resume(Store(), continue_, cid)
    model = setup.applied.model or (log.record.model if log.record is not None else None)
    llm = load_model(model, **load_settings)
    opts = setup.applied.generation_options(llm.info.default_options)
    log.attach(setup.attachments)
    click.echo(f"Chatting with {llm.info.name}. Type 'exit' or press Ctrl+D to quit; Ctrl+C stops a reply; "
               "/attach PATH adds files; /help lists commands.", err=True)
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            say("")
            return
        text = line.strip()
        if text in ("exit", "quit", "/exit", "/quit"):
            return
        if not text:
            continue
        command = _SLASH_COMMAND.match(text)
        name = command.group(1) if command else None
        if name == "/attach":
            attach_line(log, text[len(name):])
            continue
        if name:  # a typo of a command is not a message to the model
            say(LINE_HELP if name == "/help" else f"Error: unknown command {name}; {LINE_HELP}")
            continue
        try:
            result, stops = run_turn(log, llm, line, opts, setup.applied.system, write_out, _hard_stop_message)
        except LMAssistError as e:  # the attachments or the question cannot fit: nothing was saved
            dropped = " (the files attached for it were dropped; /attach fewer)" if log.pending else ""
            log.pending.clear()
            say(f"Error: {e}{dropped}")
            continue
        if result.text:
            _safe_newline()
        if result.error is not None and result.status == "error":
            say(f"Error: {result.error}")
        elif result.status == "interrupted":
            say("(interrupted)")
        if stops.signum is not None and stops.signum != signal.SIGINT:
            sys.exit(stops.exit_status)


# "/attach notes.md" or "/hlep" is a command; "/etc/hosts is what?" is a message
_SLASH_COMMAND = re.compile(r"(/[a-z]+)(?:\s|$)")
LINE_HELP = "commands: /attach PATH (files for the next message), /help, /quit (or exit, Ctrl+D)"


def attach_line(log: ConversationLog, rest: str) -> None:
    """``/attach PATH...`` in the line chat: the files go with the next message; an error is one line
    and the chat goes on."""
    try:
        args = shlex.split(rest)
        if not args:
            raise LMAssistError("/attach needs a file, a folder or a glob, e.g. /attach notes.md")
        if "-" in args:
            raise LMAssistError("the chat reads your messages from stdin; /attach a file instead of -")
        found = collect(args)
    except ValueError as e:  # shlex: an unclosed quote
        say(f"Error: /attach {rest.strip()}: {e}")
        return
    except LMAssistError as e:
        say(f"Error: {e}")
        return
    added = log.attach(found)
    show_attached(added, found.skipped_line())
    if len(added) < len(found):
        say(f"({len(found) - len(added)} already attached)")


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
@attach_options
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", help="Continue the conversation with this id.")
def chat(system: str | None, options: tuple[tuple[str, str], ...], files: tuple[str, ...], template: str | None,
         continue_: bool, cid: str | None, model: str | None, **load_settings: object) -> None:
    """Chat line by line in the terminal (no full-screen app), saving the conversation to history.

    \b
    Examples:
      lmassist chat
      lmassist chat -f notes.md            (ask about a file; /attach PATH adds more)
      lmassist chat -t reviewer -f src/    (a saved template, and a folder)
      lmassist chat -c                     (go on with the last conversation, its files included)
    """
    run_line_chat(model, system, options, continue_, cid, files, template, **load_settings)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(chat)
