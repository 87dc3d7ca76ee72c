"""``lmassist ask``: one question, answered on stdout, logged to history."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
    read_stdin,
    resume_conversation,
)
from lmassist.generation import CancelToken, Generation, GenerationOptions, LMAssistError, Message


@contextmanager
def cancel_on_sigint(token: CancelToken) -> Iterator[None]:
    """The first Ctrl+C stops the reply at the next token; a second one interrupts at once."""

    def handler(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def format_stats(gen: Generation, device: str) -> str:
    s = gen.stats
    ttft = f"{s.time_to_first_token_s * 1000:.0f} ms" if s.time_to_first_token_s is not None else "n/a"
    return (
        f"{s.prompt_tokens} prompt tokens, {s.generated_tokens} generated, "
        f"first token {ttft}, {s.tokens_per_s:.1f} tokens/s, stop: {s.stop_reason}, device: {device}"
    )


@click.command()
@click.argument("prompt", nargs=-1)
@model_option
@load_options
@click.option("-s", "--system", help="System prompt for this conversation.")
@options_option
@click.option("--no-stream", is_flag=True, help="Print the reply at the end instead of as it is generated.")
@click.option("--json", "as_json", is_flag=True, help="Print the reply and its stats as one JSON object.")
@click.option("--stats", is_flag=True, help="Print prompt/generated tokens, first-token time and tokens/s on stderr.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", help="Continue the conversation with this id (a unique prefix is enough).")
@click.option("--no-log", is_flag=True, help="Do not save this exchange in history.")
def ask(
    prompt: tuple[str, ...],
    model: str | None,
    device: str | None,
    dtype: str | None,
    trust_remote_code: bool | None,
    system: str | None,
    options: tuple[tuple[str, str], ...],
    no_stream: bool,
    as_json: bool,
    stats: bool,
    continue_: bool,
    cid: str | None,
    no_log: bool,
) -> None:
    """Ask the model one thing and stream the answer to stdout.

    Text piped on stdin is added before the prompt as context, so other tools' output can be
    reviewed, explained or summarized. Ctrl+C stops the reply; what was written is kept in history,
    marked interrupted.

    \b
    Examples:
      lmassist ask "Write a haiku about tea"
      git diff | lmassist ask "review this"
      lmassist ask -m hf:gpt2 -O temperature 0 -O max_new_tokens 40 "Once upon a time"
      lmassist ask -c "and in French?"          (continue the last conversation)
    """
    text = " ".join(prompt).strip()
    piped = read_stdin()
    if piped is not None:
        if not piped.strip() and not text:
            raise LMAssistError("nothing to ask: stdin was empty and no prompt was given")
        text = f"{piped.rstrip()}\n\n{text}".strip() if text else piped.strip()
    if not text:
        raise LMAssistError('nothing to ask: give a prompt, e.g. lmassist ask "What is a haiku?"')

    from lmassist.store import Store

    store = None if no_log else Store()
    history: list[Message] = []
    if (continue_ or cid) and no_log:
        raise LMAssistError("--continue and --cid need history; drop --no-log")
    conversation, history = resume_conversation(store, continue_, cid) if store else (None, [])
    if conversation is not None:
        model = model or conversation.model

    llm = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    opts = GenerationOptions.from_pairs(options, base=llm.info.default_options)
    messages = list(history)
    if system and not (messages and messages[0].role == "system"):
        messages.insert(0, Message("system", system))
    messages.append(Message("user", text))

    if store:
        if conversation is None:
            conversation = store.new_conversation(title=None, model=llm.info.name)
            if system:
                store.add_message(conversation.id, "system", system)
        store.add_message(conversation.id, "user", text)

    token = CancelToken()
    gen = llm.chat(messages, opts, token)
    stream = not (no_stream or as_json)
    error: BaseException | None = None
    with cancel_on_sigint(token):
        try:
            for chunk in gen:
                if stream:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            token.cancel()
        except Exception as e:  # noqa: BLE001 - re-raised below, after the partial reply is saved
            error = e
    if store and gen.stats.generated_tokens:
        status = "interrupted" if gen.interrupted else "complete"
        store.add_message(
            conversation.id, "assistant", gen.text, model=llm.info.name,
            options=opts.to_dict(), stats=gen.stats.to_dict(), status=status,
        )
    if error is not None:
        raise error
    if as_json:
        out = {
            "model": llm.info.name,
            "device": llm.info.device,
            "reply": gen.text,
            "stats": gen.stats.to_dict(),
            "conversation_id": conversation.id if conversation else None,
            "interrupted": gen.interrupted,
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    elif no_stream:
        click.echo(gen.text)
    elif gen.text and not gen.text.endswith("\n"):
        sys.stdout.write("\n")
        sys.stdout.flush()
    if stats:
        click.echo(format_stats(gen, llm.info.device), err=True)
    if gen.interrupted:
        click.echo("Interrupted: the partial reply was kept in history." if store else "Interrupted.", err=True)
        sys.exit(130)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(ask)
