"""Pieces every command shares: the model option, ``-O KEY VALUE``, reading stdin and files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lmassist.generation import LMAssistError, Message, Model
from lmassist.textinput import MAX_INPUT_BYTES, decode_text, read_stdin, read_text_file  # noqa: F401 - re-exported

model_option = click.option(
    "-m", "--model", metavar="NAME",
    help="Model as BACKEND:NAME (see 'lmassist models list'); default: the configured default model.",
)

def _old_option_flag(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value:
        key, val = value[0]
        raise click.UsageError(
            f"-o means --output FILE everywhere in lmassist; generation options are -O/--option KEY VALUE "
            f"(here: -O {key} {val})", ctx
        )


def options_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-O/--option KEY VALUE``; ``-o`` stays ``--output`` in every command, so it only points here."""
    f = click.option(
        "-o", "old_options", type=(str, str), multiple=True, hidden=True, expose_value=False,
        callback=_old_option_flag,
    )(f)
    return click.option(
        "-O", "--option", "options", type=(str, str), multiple=True, metavar="KEY VALUE",
        help="Generation option, repeatable: max_new_tokens, temperature, top_p, top_k, "
        "repetition_penalty, stop, seed.",
    )(f)


def load_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--device``, ``--dtype`` and ``--trust-remote-code``: how a model is loaded, not how it samples."""
    f = click.option(
        "--trust-remote-code", is_flag=True, default=None,
        help="Allow a transformers model to run Python code shipped with it (off by default).",
    )(f)
    f = click.option(
        "--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]),
        help="Weights dtype (transformers/in-house; default: bf16/fp16 on GPU, fp32 on CPU).",
    )(f)
    return click.option("--device", help="Where to run: auto, cpu, cuda, cuda:N, mps (transformers/in-house).")(f)


def get_registry() -> Any:
    """The registry, with a warning on stderr for each plugin that broke while filling it."""
    from lmassist.plugins import get_manager
    from lmassist.registry import Registry

    manager = get_manager()
    seen = len(manager.errors)
    registry = Registry(manager)
    for error in manager.errors[seen:]:
        click.echo(f"Warning: {error}", err=True)
    return registry


def load_model(name: str | None, **settings: Any) -> Model:
    return get_registry().load(name, **settings)


def resume_conversation(store: Any, continue_: bool, cid: str | None) -> tuple[Any, list[Message]]:
    """The conversation ``--continue``/``--cid`` name, and its messages as context (none if neither)."""
    if not (continue_ or cid):
        return None, []
    conversation = store.get(cid) if cid else store.latest()
    if conversation is None:
        raise LMAssistError("there is no conversation to continue yet")
    return conversation, [Message(m.role, m.content) for m in store.messages(conversation.id)]


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def progress_bar(description: str) -> tuple[Any, Callable[[int, int | None], None]]:
    """A rich progress bar on stderr and the ``progress(done, total)`` callback that drives it."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=console(stderr=True), transient=False,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int | None) -> None:
        if not bar.live.is_started:  # drawn on first progress, so a failure before it prints one line
            bar.start()
        bar.update(task, completed=done, total=total)

    return bar, update
