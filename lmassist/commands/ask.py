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
app follows them too); the terminal's part of a turn is :mod:`lmassist.commands.turn`, what is
read before it (``-f``, ``-t``) :mod:`lmassist.commands.turn_setup`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import load_model, load_options, model_option, options_option, read_stdin
from lmassist.commands.turn import Stops, TurnResult, format_stats, held_turn, run_turn, write_out
from lmassist.commands.turn_setup import (
    TurnSetup,
    attach_options,
    check_docs_combination,
    citation_dicts,
    citation_lines,
    prepare,
    say,
    show_attached,
)
from lmassist.conversation import ConversationLog
from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Model, parse_option_pairs
from lmassist.store import Store


def question_text(prompt: tuple[str, ...], setup: TurnSetup) -> str:
    """The prompt, with piped stdin in front of it as context (unless ``-f -`` took stdin)."""
    text = " ".join(prompt).strip()
    piped = None if setup.reads_stdin else read_stdin()
    if piped is not None:
        if not piped.strip() and not text and not setup.attachments:
            raise LMAssistError("nothing to ask: stdin was empty and no prompt was given")
        text = f"{piped.rstrip()}\n\n{text}".strip() if text else piped.strip()
    if not text and setup.attachments:
        raise LMAssistError('nothing to ask about the attached files: add a question, e.g. '
                            'lmassist ask -f notes.md "Summarize this"')
    if not text:
        raise LMAssistError('nothing to ask: give a prompt, e.g. lmassist ask "What is a haiku?"')
    return text


def docs_reply(log: ConversationLog, llm: Model, text: str, opts: GenerationOptions, docs: str,
               write: Callable[[str], None] | None,
               hard_stop: Callable[[TurnResult], str]) -> tuple[TurnResult, Stops, list[Any]]:
    """``ask --docs``: the passages' turn streamed, or its abstention saved and shown without
    generating; the citations are saved with the reply (``history show/export`` print them)."""
    from lmassist.tasks.docs_answer import docs_turn

    turn = docs_turn(llm, docs, text, log.context())
    cited = [] if turn.abstain is not None else list(turn.citations)
    reply_options: dict[str, Any] = {"docs": docs, "citations": citation_dicts(cited)}
    if turn.abstain is None:
        result, stops = run_turn(log, llm, text, opts, None, write, hard_stop, turn.messages, reply_options)
        return result, stops, cited
    reply_options["abstained"] = True
    with Stops(CancelToken()) as stops, held_turn(log, stops):
        exchange = log.start_exchange(text, model=llm.info.name, options=opts, messages=[],
                                      reply_options=reply_options)
        log.finish_exchange(exchange, turn.abstain, "complete", None)
    if write is not None:
        write(turn.abstain)
    return TurnResult(text=turn.abstain, extra={"abstained": True}), stops, []


@click.command()
@click.argument("prompt", nargs=-1)
@model_option
@load_options
@click.option("-s", "--system", help="System prompt for this conversation.")
@options_option
@attach_options
@click.option("--docs", "docs", metavar="NAME",
              help="Answer from a folder indexed with `lmassist docs add`, then list the path:line it came from.")
@click.option("--no-stream", is_flag=True, help="Print the reply at the end instead of as it is generated.")
@click.option("--json", "as_json", is_flag=True, help="Print the reply and its stats as one JSON object.")
@click.option("--stats", is_flag=True, help="Print prompt/generated tokens, first-token time and tokens/s on stderr.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", help="Continue the conversation with this id (a unique prefix is enough).")
@click.option("--no-log", is_flag=True, help="Do not save this exchange in history.")
def ask(prompt: tuple[str, ...], model: str | None, device: str | None, dtype: str | None,
        trust_remote_code: bool | None, system: str | None, options: tuple[tuple[str, str], ...],
        files: tuple[str, ...], template: str | None, docs: str | None, no_stream: bool, as_json: bool,
        stats: bool, continue_: bool, cid: str | None, no_log: bool) -> None:
    """Ask the model one thing and stream the answer to stdout.

    Text piped on stdin is added before the prompt as context, so other tools' output can be
    reviewed, explained or summarized. Files attached with -f are shown to the model under their
    names, on this turn and every later one of the conversation (-c); when they do not fit its
    context, the passages that best match the question are used, and a line on stderr says so.
    Ctrl+C (or SIGTERM, SIGHUP) stops the reply; what was written is kept in history, marked
    interrupted, and the exit status is 128 + the signal (130 for Ctrl+C).

    \b
    Examples:
      lmassist ask "Write a haiku about tea"
      git diff | lmassist ask "review this"
      lmassist ask -f notes.md "Who brings the budget?"
      lmassist ask -f docs/ -f 'src/*.py' "Where is the config read?"
      lmassist ask -c "and what about the venue?"   (the same files, next question)
      lmassist ask --docs notes "When is the offsite?"   (after: lmassist docs add ~/notes --name notes)
      lmassist ask -t reviewer -f patch.diff "Anything risky?"
      lmassist ask -m hf:gpt2 -O temperature 0 -O max_new_tokens 40 "Once upon a time"
    """
    changes = parse_option_pairs(options)  # bad options fail now, not after the model has loaded
    setup = prepare(template, system, model, changes, files)  # so do bad -f and -t
    check_docs_combination(docs, setup)
    text = question_text(prompt, setup)
    if (continue_ or cid) and no_log:
        raise LMAssistError("--continue and --cid need history; drop --no-log")
    show_attached(setup.attachments, setup.skipped)

    store = None if no_log else Store()
    log = ConversationLog.resume(store, continue_, cid)
    model = setup.applied.model or (log.record.model if log.record is not None else None)
    llm = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    opts = setup.applied.generation_options(llm.info.default_options)
    log.attach(setup.attachments)
    stream = not (no_stream or as_json)

    def hard_stop(result: TurnResult) -> str:
        kept = " (the partial reply was kept in history)" if store and result.text else ""
        return f"\nInterrupted{kept}."

    write = write_out if stream else None
    cited: list[Any] = []
    if docs:
        result, stops, cited = docs_reply(log, llm, text, opts, docs, write, hard_stop)
    else:
        result, stops = run_turn(log, llm, text, opts, setup.applied.system, write, hard_stop)
    report(result, stops, llm, log, as_json, no_stream, stats, bool(store), cited)


def report(result: TurnResult, stops: Stops, llm: Model, log: ConversationLog, as_json: bool, no_stream: bool,
           stats: bool, logged: bool, cited: list[Any]) -> None:
    """The end of ``ask``: the reply (JSON, or the rest of it), its citations, stats, and the exit status."""
    gen = result.generation
    if isinstance(result.output_error, BrokenPipeError):
        raise result.output_error  # the reader went away: the CLI leaves quietly, the reply is kept
    if result.error is not None and stops.signum is None:
        raise result.error
    if as_json and (gen is not None or result.extra.get("abstained")):
        out = {
            "model": llm.info.name,
            "device": llm.info.device,
            "reply": result.text,
            "stats": gen.stats.to_dict() if gen is not None else None,
            "conversation_id": log.id,
            "interrupted": result.status == "interrupted",
            "attachments": [a.to_dict() for a in log.attached()],
            "citations": citation_dicts(cited),
            "abstained": bool(result.extra.get("abstained")),
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    elif no_stream:
        click.echo(result.text)
    elif result.text and not result.text.endswith("\n") and result.output_error is None:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if cited and not as_json and result.output_error is None:
        click.echo("\nSources:\n" + "\n".join(citation_lines(cited)))
    if stats and gen is not None:
        say(format_stats(gen, llm.info.device))
    if result.status == "interrupted" or stops.signum is not None:
        what = {signal.SIGINT: "Interrupted"}.get(stops.signum or signal.SIGINT, f"Stopped by {_signal_name(stops.signum)}")
        if logged and result.text:
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
