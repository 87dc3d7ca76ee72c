"""Pieces every command shares: the model option, ``-o KEY VALUE``, reading stdin and files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lmassist.generation import LMAssistError, Model

MAX_INPUT_BYTES = 50 * 1024 * 1024

model_option = click.option(
    "-m", "--model", metavar="NAME",
    help="Model as BACKEND:NAME (see 'lmassist models list'); default: the configured default model.",
)

options_option = click.option(
    "-o", "--option", "options", type=(str, str), multiple=True, metavar="KEY VALUE",
    help="Generation option, repeatable: max_new_tokens, temperature, top_p, top_k, "
    "repetition_penalty, stop, seed.",
)


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


def decode_text(data: bytes, source: str) -> str:
    """Text from bytes, or a one-line error for binary or non-UTF-8 input."""
    if b"\x00" in data[:8192]:
        raise LMAssistError(f"{source} looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LMAssistError(f"{source} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def read_stdin() -> str | None:
    """Piped stdin as text; None when stdin is a terminal (nothing was piped)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return None
    try:
        data = stream.buffer.read(MAX_INPUT_BYTES + 1)
    except (OSError, ValueError):
        return None
    if len(data) > MAX_INPUT_BYTES:
        raise LMAssistError(f"stdin is larger than {MAX_INPUT_BYTES // 2**20} MB; pass a smaller input")
    return decode_text(data, "stdin")


def read_text_file(path: str) -> str:
    """A file's text, with '-' meaning stdin; each failure a one-line error naming the file."""
    if path == "-":
        text = read_stdin()
        if text is None:
            raise LMAssistError("'-' means stdin, but nothing was piped in")
        return text
    p = Path(path).expanduser()
    if not p.exists():
        raise LMAssistError(f"no such file: {path}")
    if p.is_dir():
        raise LMAssistError(f"{path} is a folder; give a file")
    try:
        size = p.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise LMAssistError(f"{path} is {size / 2**20:.0f} MB; the limit is {MAX_INPUT_BYTES // 2**20} MB")
        data = p.read_bytes()
    except PermissionError:
        raise LMAssistError(f"cannot read {path}: permission denied") from None
    except OSError as e:
        raise LMAssistError(f"cannot read {path}: {e.strerror}") from None
    return decode_text(data, path)


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
