"""``lmassist chat``: a line-by-line chat in the terminal, and what bare ``lmassist`` opens."""

from __future__ import annotations

import sys

import click

from lmassist import hookimpl
from lmassist.commands.ask import cancel_on_sigint
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
    resume_conversation,
)
from lmassist.generation import CancelToken, GenerationOptions, Message


def run_line_chat(
    model: str | None,
    system: str | None,
    options: tuple[tuple[str, str], ...],
    continue_: bool,
    cid: str | None,
    **load_settings: object,
) -> None:
    from lmassist.store import Store

    store = Store()
    conversation, messages = resume_conversation(store, continue_, cid)
    if conversation is not None:
        model = model or conversation.model  # carry on with the model the conversation used
    llm = load_model(model, **load_settings)
    opts = GenerationOptions.from_pairs(options, base=llm.info.default_options)
    if system and not (messages and messages[0].role == "system"):
        messages.insert(0, Message("system", system))
    click.echo(f"Chatting with {llm.info.name}. Type 'exit' or press Ctrl+D to quit; Ctrl+C stops a reply.", err=True)
    while True:
        try:
            line = input("> ")
        except EOFError:
            click.echo("", err=True)
            return
        except KeyboardInterrupt:
            click.echo("", err=True)
            return
        if line.strip() in ("exit", "quit"):
            return
        if not line.strip():
            continue
        if conversation is None:
            conversation = store.new_conversation(model=llm.info.name)
            if system:
                store.add_message(conversation.id, "system", system)
        messages.append(Message("user", line))
        store.add_message(conversation.id, "user", line)
        token = CancelToken()
        gen = llm.chat(messages, opts, token)
        with cancel_on_sigint(token):
            for chunk in gen:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        sys.stdout.write("\n")
        status = "interrupted" if gen.interrupted else "complete"
        messages.append(Message("assistant", gen.text))
        store.add_message(conversation.id, "assistant", gen.text, model=llm.info.name,
                          options=opts.to_dict(), stats=gen.stats.to_dict(), status=status)
        if gen.interrupted:
            click.echo("(interrupted)", err=True)


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
