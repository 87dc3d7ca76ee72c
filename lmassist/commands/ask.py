"""``lmassist ask``: one question, answered on stdout, logged to history.

What a turn keeps, whatever stops it (the same in the line chat, ``lmassist chat``):

* the question is saved before the model is asked; the reply is saved as it streams (about once a
  second) and finally with its status and stats;
* Ctrl+C (SIGINT), SIGTERM (``kill``, ``timeout``, systemd) and SIGHUP (a closed terminal) stop the
  reply at the next token, or between two prompt batches, keep what was written marked
  ``interrupted`` and exit 130, 143 and 129 (128 + the signal); a second signal exits at once,
  still keeping what was shown;
* a turn that fails before the model says anything is marked ``error`` and left out of the context
  of later turns (a failed first question leaves no conversation behind);
* two turns in one conversation never interleave: a second ``ask -c`` waits for the first.

What is saved when, and what the model is shown, are :mod:`lmassist.conversation`'s rules (the
app follows them too); this module adds the terminal's part. The reply is generated in a worker
thread while the main thread writes it out and handles signals, so a signal is acted on at once
even while llama.cpp evaluates a long prompt.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import (
    load_model,
    load_options,
    model_option,
    options_option,
    read_stdin,
)
from lmassist.conversation import ConversationLog, ReplyRow
from lmassist.generation import (
    CancelToken,
    Generation,
    GenerationOptions,
    LMAssistError,
    Message,
    Model,
    parse_option_pairs,
)
from lmassist.store import Store, TurnLockCancelled

SAVE_EVERY_S = 1.0  # how often a streaming reply's text is written to the history
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def exit_status(signum: int | None) -> int:
    """128 + the signal, the shell's convention (130 for Ctrl+C)."""
    return 128 + int(signum) if signum else 130


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


class Stops:
    """SIGINT, SIGTERM and SIGHUP while a turn runs: the first cancels the turn's token (and wakes
    the main thread through ``events``); a second is counted, for the caller to exit at once."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token
        self.signum: int | None = None
        self.count = 0
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
        self.token.cancel()
        self.events.put(("signal", signum))  # SimpleQueue.put is safe in a signal handler

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)

    def __enter__(self) -> Stops:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


@dataclass
class TurnResult:
    """How a reply ended: its text as shown, a status for the history, and why it stopped."""

    text: str = ""
    status: str = "complete"  # complete, interrupted, error
    stats: dict[str, Any] | None = None
    generation: Generation | None = None
    error: BaseException | None = None
    output_error: OSError | None = None  # stdout went away (a closed pipe or terminal)
    hard_stop: bool = False  # a second signal: the worker may still be inside the model
    extra: dict[str, Any] = field(default_factory=dict)


def stream_reply(
    llm: Model,
    messages: list[Message],
    opts: GenerationOptions,
    stops: Stops,
    row: ReplyRow,
    write: Callable[[str], None] | None,
) -> TurnResult:
    """Generate in a worker thread; write, save and watch for signals here, in the main thread."""
    result = TurnResult()
    if stops.token.cancelled:  # a signal came before the model was asked
        result.status = "interrupted"
        return result
    gen = llm.chat(messages, opts, stops.token)
    result.generation = gen
    events = stops.events

    def produce() -> None:
        try:
            for chunk in gen:
                events.put(("chunk", chunk))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            events.put(("failed", e))
        finally:
            events.put(("done", None))

    worker = threading.Thread(target=produce, name="lmassist-reply", daemon=True)
    worker.start()
    parts: list[str] = []
    saved_at, saved_len = time.monotonic(), 0
    while True:
        try:
            kind, value = events.get(timeout=SAVE_EVERY_S / 4)
        except queue.Empty:
            kind, value = "", None
        if kind == "chunk":
            parts.append(value)
            if write is not None and result.output_error is None:
                try:
                    write(value)
                except OSError as e:  # the reader or the terminal is gone: stop, keep the reply
                    result.output_error = e
                    stops.token.cancel()
        elif kind == "signal" and stops.count >= 2:
            result.hard_stop = True
            break
        elif kind == "signal" and not parts and value == getattr(signal, "SIGINT", None):
            say("Stopping… (Ctrl+C again quits at once)")  # the prompt may still be being read
        elif kind == "failed":
            result.error = value
        elif kind == "done":
            break
        if len(parts) > saved_len and time.monotonic() - saved_at >= SAVE_EVERY_S:
            try:
                row.save("".join(parts))
            except LMAssistError:
                pass  # a busy history must not stop the reply; the final save tries again
            saved_at, saved_len = time.monotonic(), len(parts)
    result.text = "".join(parts)
    if result.hard_stop:
        result.status = "interrupted"
        result.stats = {"generated_tokens": len(parts), "stop_reason": "cancelled"}
        return result
    result.stats = gen.stats.to_dict()
    if gen.interrupted or stops.token.cancelled:
        result.status = "interrupted"
    if result.error is not None:
        result.status = "interrupted" if result.text else "error"
    return result


def say(text: str) -> None:
    """A line on stderr that must not fail when the terminal is gone (SIGHUP)."""
    try:
        click.echo(text, err=True)
    except OSError:
        pass


def hard_exit(status: int, message: str) -> None:
    """Leave now, from the main thread, while the worker may still be inside the model: flushing
    what can be flushed and skipping the interpreter's teardown, which would free the model under
    the worker (a native crash)."""
    say(message)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


@contextmanager
def held_turn(log: ConversationLog, stops: Stops) -> Iterator[None]:
    """Hold the conversation for one turn, saying so on stderr if another lmassist holds it."""

    def waiting() -> None:
        say("Waiting for another lmassist to finish its reply in this conversation…")

    try:
        with log.turn(cancelled=lambda: stops.token.cancelled, waiting=waiting):
            yield
    except TurnLockCancelled:
        say("Interrupted while waiting; nothing was asked or saved.")
        sys.exit(stops.exit_status)


def run_turn(
    log: ConversationLog, llm: Model, text: str, opts: GenerationOptions, system: str | None,
    write: Callable[[str], None] | None, hard_stop_message: Callable[[TurnResult], str],
) -> tuple[TurnResult, Stops]:
    """One question and its reply, held, saved and stopped as the module docstring says (``ask`` and
    the line chat). A second signal leaves at once with ``hard_stop_message``."""
    with Stops(CancelToken()) as stops, held_turn(log, stops):
        exchange = log.start_exchange(text, model=llm.info.name, options=opts, system=system)
        try:
            result = stream_reply(llm, exchange.messages, opts, stops, exchange.reply, write)
        except Exception as e:  # noqa: BLE001 - chat() itself refused: nothing was generated, saved below
            result = TurnResult(status="error", error=e)
        if result.hard_stop:
            log.finish_exchange(exchange, result.text, result.status, result.stats, keep_conversation=True)
            hard_exit(stops.exit_status, hard_stop_message(result))
        log.finish_exchange(exchange, result.text, result.status, result.stats)
    return result, stops


def format_stats(gen: Generation, device: str) -> str:
    s = gen.stats
    ttft = f"{s.time_to_first_token_s * 1000:.0f} ms" if s.time_to_first_token_s is not None else "n/a"
    return (
        f"{s.prompt_tokens} prompt tokens, {s.generated_tokens} generated, "
        f"first token {ttft}, {s.tokens_per_s:.1f} tokens/s, stop: {s.stop_reason}, device: {device}"
    )


def write_out(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


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
    reviewed, explained or summarized. Ctrl+C (or SIGTERM, SIGHUP) stops the reply; what was
    written is kept in history, marked interrupted, and the exit status is 128 + the signal
    (130 for Ctrl+C). A second Ctrl+C exits at once.

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
    if (continue_ or cid) and no_log:
        raise LMAssistError("--continue and --cid need history; drop --no-log")
    changes = parse_option_pairs(options)  # bad options fail now, not after the model has loaded

    store = None if no_log else Store()
    log = ConversationLog.resume(store, continue_, cid)
    if log.record is not None:
        model = model or log.record.model  # carry on with the model the conversation used

    llm = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    opts = llm.info.default_options.replace(**changes).validate()
    stream = not (no_stream or as_json)

    def hard_stop(result: TurnResult) -> str:
        kept = " (the partial reply was kept in history)" if store and result.text else ""
        return f"\nInterrupted{kept}."

    result, stops = run_turn(log, llm, text, opts, system, write_out if stream else None, hard_stop)
    gen = result.generation
    if isinstance(result.output_error, BrokenPipeError):
        raise result.output_error  # the reader went away: the CLI leaves quietly, the reply is kept
    if result.error is not None and stops.signum is None:
        raise result.error
    if as_json and gen is not None:
        out = {
            "model": llm.info.name,
            "device": llm.info.device,
            "reply": result.text,
            "stats": gen.stats.to_dict(),
            "conversation_id": log.id,
            "interrupted": result.status == "interrupted",
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    elif no_stream:
        click.echo(result.text)
    elif result.text and not result.text.endswith("\n") and result.output_error is None:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if stats and gen is not None:
        say(format_stats(gen, llm.info.device))
    if result.status == "interrupted" or stops.signum is not None:
        what = {signal.SIGINT: "Interrupted"}.get(stops.signum or signal.SIGINT, f"Stopped by {_signal_name(stops.signum)}")
        if store and result.text:
            say(f"{what}: the partial reply was kept in history.")
        else:
            say(f"{what}.")
        sys.exit(stops.exit_status)


def _signal_name(signum: int | None) -> str:
    try:
        return signal.Signals(signum or signal.SIGINT).name
    except ValueError:
        return f"signal {signum}"


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(ask)
