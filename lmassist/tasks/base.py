"""The task contract: what a task declares, and how it runs as a slash command.

A task is declared once — its name, one-line summary, arguments and JSON schema — and served by
three faces from that one declaration: a click command (``lmassist summarize ...``, built by
:mod:`lmassist.commands.task_command`), scripts (stdin/stdout and ``--json``) and the TUI, which
calls the duck-typed interface below:

``task.name``, ``task.summary``, ``task.slash_usage`` and
``task.run_slash(model, argline, progress=None, cancel=None) -> str`` (Markdown).

Third-party tasks subclass :class:`Task` (or implement the same attributes) and register it with
``register_tasks``; they appear in ``lmassist tasks``, as a CLI command and in the TUI with no change
to lmassist. A task gets its model through :mod:`lmassist.generation` only, never a backend.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import click

from lmassist.generation import CancelToken, LMAssistError, Model

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class Param:
    """One argument of a task, declared once for the CLI, the slash command and the docs.

    ``kind`` is ``"argument"`` (positional), ``"option"`` (takes a value) or ``"flag"`` (boolean).
    ``files`` marks positional FILE arguments: ``-`` or nothing means stdin.
    """

    name: str
    kind: Literal["argument", "option", "flag"] = "option"
    help: str = ""
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None
    required: bool = False
    multiple: bool = False
    type: Any = str
    files: bool = False

    def to_click(self) -> click.Parameter:
        ptype: Any = click.Choice(self.choices, case_sensitive=False) if self.choices else self.type
        if self.kind == "argument":
            return click.Argument(
                [self.name], nargs=-1 if self.multiple else 1, required=self.required and not self.multiple,
                type=ptype, metavar=self.metavar,
            )
        flags = list(self.flags) or ["--" + self.name.replace("_", "-")]
        if self.kind == "flag":
            return click.Option([*flags, self.name], is_flag=True, default=bool(self.default), help=self.help)
        return click.Option(
            [*flags, self.name], type=ptype, default=self.default, required=self.required,
            multiple=self.multiple, metavar=self.metavar, help=self.help,
            show_default=self.default not in (None, (), False),
        )

    def usage(self) -> str:
        """How the parameter reads in a one-line usage string (``--length short|medium|long``)."""
        if self.kind == "argument":
            meta = self.metavar or self.name.upper()
            return f"{meta}..." if self.multiple else meta
        flag = (self.flags or ("--" + self.name.replace("_", "-"),))[-1]
        if self.kind == "flag":
            return f"[{flag}]"
        meta = "|".join(self.choices) if self.choices else (self.metavar or self.name.upper())
        text = f"{flag} {meta}"
        return text if self.required else f"[{text}]"


@dataclass
class TaskResult:
    """What a run produced: ``text`` for stdout or ``-o``, ``data`` for ``--json``, ``markdown`` for the TUI."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    markdown: str | None = None


@dataclass
class TaskInput:
    """One input text and where it came from (a path, ``stdin`` or ``--text``)."""

    source: str
    text: str


class Task:
    """Base class for tasks; subclasses set the class attributes and implement :meth:`run`.

    ``json_schema`` documents the ``--json`` output (a JSON Schema object); ``None`` means the
    task has no ``--json``. ``reads_files`` adds ``--encoding``; ``writes_output`` adds ``-o OUT``.
    """

    name: str = ""
    summary: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    json_schema: dict[str, Any] | None = None
    reads_files: bool = False
    writes_output: bool = True
    needs_model: bool = True  # False: run() gets model=None and no model is loaded
    examples: tuple[str, ...] = ()

    # -- what a task implements -----------------------------------------------------------------

    def run(
        self,
        model: Model,
        values: dict[str, Any],
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> TaskResult:
        """Run on already-parsed ``values`` (what the CLI or slash parser produced)."""
        raise NotImplementedError

    def check(self, values: dict[str, Any]) -> None:
        """Validate arguments before a model is loaded, so bad input fails fast (override as needed)."""

    def needs_files(self, values: dict[str, Any]) -> bool:
        """True when a slash command got no FILE: the TUI has no stdin to fall back on."""
        return any(p.files and not values.get(p.name) for p in self.params)

    # -- the TUI's interface ----------------------------------------------------------------------

    @property
    def slash_usage(self) -> str:
        return " ".join([f"/{self.name}", *(p.usage() for p in self.params)])

    def parse_slash(self, argline: str) -> dict[str, Any]:
        """Parse a slash command's argument line with the same definitions as the CLI."""
        try:
            args = shlex.split(argline)
        except ValueError as e:
            raise LMAssistError(f"cannot parse the arguments of /{self.name}: {e}") from None
        command = click.Command(self.name, params=self.click_params(), add_help_option=False)
        try:
            ctx = command.make_context(self.name, args)
        except click.ClickException as e:
            raise LMAssistError(f"{e.format_message()} (usage: {self.slash_usage})") from None
        values = dict(ctx.params)
        if self.reads_files:
            values.setdefault("encoding", None)
        if self.needs_files(values):
            raise LMAssistError(f"give a file: {self.slash_usage}")
        self.check(values)
        return values

    def run_slash(
        self,
        model: Model,
        argline: str,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Parse ``argline``, read files, run, and return Markdown to show."""
        values = self.parse_slash(argline)
        result = self.run(model, values, progress=progress, cancel=cancel)
        return result.markdown if result.markdown is not None else result.text

    def click_params(self) -> list[click.Parameter]:
        """The declared parameters as click parameters (the CLI command and the slash parser share them)."""
        params = [p.to_click() for p in self.params]
        if self.reads_files:
            params.append(click.Option(
                ["--encoding"], metavar="NAME",
                help="Text encoding of the input files (default: UTF-8), e.g. latin-1, cp1252.",
            ))
        return params


def read_inputs(paths: tuple[str, ...] | list[str], encoding: str | None = None) -> list[TaskInput]:
    """The texts of FILE arguments (``-`` or none meaning stdin), each failure a one-line error."""
    from lmassist.textinput import read_stdin

    if not paths:
        text = read_stdin()
        if text is None:
            raise LMAssistError("no input: give a FILE, or pipe text in and use '-'")
        return [TaskInput("stdin", _non_empty(text, "stdin"))]
    return [TaskInput("stdin" if p == "-" else p, _non_empty(read_one(p, encoding), p)) for p in paths]


def read_one(path: str, encoding: str | None = None) -> str:
    """One file's text; a non-UTF-8 file's error hints at ``--encoding``."""
    from lmassist.textinput import read_text_file

    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise LMAssistError(f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252") from None
        from lmassist.textinput import read_file_bytes, read_stdin_bytes

        if path == "-":
            data = read_stdin_bytes()
            if data is None:
                raise LMAssistError("'-' means stdin, but nothing was piped in")
        else:
            data = read_file_bytes(path)
        if b"\x00" in data[:8192]:
            raise LMAssistError(f"{path} looks like a binary file, not text")
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            raise LMAssistError(f"{path} is not valid {encoding} text (byte {e.start})") from None
    try:
        return read_text_file(path)
    except LMAssistError as e:
        if "not UTF-8" in str(e):
            raise LMAssistError(f"{e}; pass --encoding (e.g. --encoding latin-1)") from None
        raise


def _non_empty(text: str, source: str) -> str:
    if not text.strip():
        raise LMAssistError(f"{source} is empty: nothing to work on")
    return text
