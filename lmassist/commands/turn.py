"""A turn in the terminal (``ask`` and the line ``chat``): generated in a worker thread while the
main thread writes it out, saves it and handles signals, so a signal is acted on at once even while
llama.cpp evaluates a long prompt. What a turn keeps, whatever stops it, is in :mod:`lmassist.commands.ask`.
"""

from __future__ import annotations

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

from lmassist.commands.turn_setup import say, show_fit
from lmassist.conversation import ConversationLog, ReplyRow
from lmassist.generation import CancelToken, Generation, GenerationOptions, LMAssistError, Message, Model
from lmassist.store import TurnLockCancelled

__all__ = ["SAVE_EVERY_S", "STOP_SIGNALS", "Stops", "TurnResult", "cancel_on_sigint", "exit_status", "format_stats",
           "hard_exit", "held_turn", "run_turn", "say", "stream_reply", "write_out"]

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
    messages: list[Message] | None = None, reply_options: dict[str, Any] | None = None,
) -> tuple[TurnResult, Stops]:
    """One question and its reply, held, saved and stopped as the module docstring says (``ask`` and
    the line chat). A second signal leaves at once with ``hard_stop_message``. The conversation's
    attachments go in front of the question (a line on stderr when only passages fit); ``messages``
    replaces what the model is asked and ``reply_options`` are saved with the reply (``--docs``)."""
    with Stops(CancelToken()) as stops, held_turn(log, stops):
        exchange = log.start_exchange(text, model=llm.info.name, options=opts, system=system, llm=llm,
                                      messages=messages, reply_options=reply_options)
        show_fit(exchange.attachments)
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
