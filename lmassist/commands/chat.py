"""``lmassist chat``: a line-by-line chat in the terminal, and what bare ``lmassist`` opens."""

from __future__ import annotations

import signal
import sys

import click

from lmassist import hookimpl
from lmassist.commands.ask import (
    ReplyRow,
    Stops,
    TurnResult,
    context_of,
    conversation_turn,
    finish_turn,
    hard_exit,
    resume,
    say,
    stream_reply,
)
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
)
from lmassist.generation import CancelToken, Message, parse_option_pairs


def _write_out(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


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
    from lmassist.store import Store

    changes = parse_option_pairs(options)  # bad options fail before the model loads
    store = Store()
    conversation = resume(store, continue_, cid)
    if conversation is not None:
        model = model or conversation.model  # carry on with the model the conversation used
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
        token = CancelToken()
        with Stops(token) as stops, conversation_turn(store, conversation.id if conversation else None, stops):
            # Read again each turn: another lmassist may have added to this conversation meanwhile.
            messages = context_of(store, conversation.id) if conversation is not None else []
            if system and not (messages and messages[0].role == "system"):
                messages.insert(0, Message("system", system))
            messages.append(Message("user", line))
            new_conversation = None
            if conversation is None:
                conversation = store.new_conversation(model=llm.info.name)
                new_conversation = conversation.id
                if system:
                    store.add_message(conversation.id, "system", system)
            user_mid = store.add_message(conversation.id, "user", line)
            row = ReplyRow(store, conversation.id, llm.info.name, opts)
            try:
                result = stream_reply(llm, messages, opts, stops, row, _write_out)
            except Exception as e:  # noqa: BLE001 - shown below, the chat goes on
                result = TurnResult(status="error", error=e)
            if result.hard_stop:
                finish_turn(store, result, row, user_mid, None)
                hard_exit(stops.exit_status, "\n(interrupted; the partial reply was kept in history)")
            finish_turn(store, result, row, user_mid, new_conversation)
            if result.status == "error" and new_conversation is not None:
                conversation = None  # its only message failed, and it was removed
        if result.text:
            _safe_newline()
        if result.error is not None and result.status == "error":
            say(f"Error: {result.error}")
        elif result.status == "interrupted":
            say("(interrupted)")
        if stops.signum is not None and stops.signum != signal.SIGINT:
            sys.exit(stops.exit_status)


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
def chat(
    model: str | None,
    device: str | None,
    dtype: str | None,
    trust_remote_code: bool | None,
    system: str | None,
    options: tuple[tuple[str, str], ...],
    continue_: bool,
    cid: str | None,
) -> None:
    """Chat line by line in the terminal (no full-screen app), saving the conversation to history."""
    run_line_chat(model, system, options, continue_, cid, device=device, dtype=dtype, trust_remote_code=trust_remote_code)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(chat)
