"""The task contract: what a task declares, checked once when a plugin registers it.

A task is declared once (its name, one-line summary, arguments and JSON schema) and served by three
faces from that one declaration: a click command (``lmassist summarize ...``, built by
:mod:`lmassist.commands.task_command`), scripts (stdin/stdout and ``--json``) and the TUI, which
calls ``task.run_slash(model, argline, progress=None, cancel=None) -> str`` (Markdown).

Tasks subclass :class:`Task` and register with ``register_tasks``; they appear in ``lmassist tasks``,
as a CLI command and in the TUI with no change to lmassist. A plugin object that does not subclass
it but offers a ``name`` and a way to run (:class:`TaskLike`) is wrapped once, at registration, in
a :class:`PluginTask`, so every caller reads a :class:`Task`. A task gets its model through
:mod:`lmassist.generation` only, never a backend.
"""

from __future__ import annotations

import codecs
import os
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import click

from lmassist.errors import describe
from lmassist.generation import CancelToken, LMAssistError, Model
from lmassist.textinput import read_file_bytes, read_stdin, read_stdin_bytes, read_text_file

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
    progress_unit: str = ""  # what the progress bar counts ("lines"); empty: steps

    # -- what a task implements -----------------------------------------------------------------

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        """Run on already-parsed ``values`` (what the CLI or slash parser produced)."""
        raise NotImplementedError

    def check(self, values: dict[str, Any]) -> None:
        """Validate arguments before a model is loaded, so bad input fails fast (override as needed)."""

    def needs_files(self, values: dict[str, Any]) -> bool:
        """True when a slash command got no FILE: the TUI has no stdin to fall back on."""
        return any(p.files and not values.get(p.name) for p in self.params)

    def command(self) -> click.Command | None:
        """A click command of the task's own, replacing the one lmassist builds from the declaration;
        None (the default) lets lmassist build it."""
        return None

    def records(self, model: Model, values: dict[str, Any], inputs: Iterable[TaskInput],
                progress: Progress | None = None, cancel: CancelToken | None = None) -> Iterator[dict[str, Any]]:
        """The streaming face (``--jsonl``, a folder job with no ``--out``): one JSON-able dict per
        record, yielded as soon as it is ready, so a pipeline reads the first before the last is done.

        ``inputs`` is lazy (a folder is read one file at a time, as this pulls them); each record
        names its ``source`` (and ``line`` where it is one line of it). A record with an ``error``
        key (one line) is an input that failed; the run goes on. The default runs the task on each
        input alone (``values["inputs"]``, see :meth:`FileTask.inputs`) and yields one record per
        input; a task that can batch across inputs (sentiment ``--per-line``) overrides it.
        """
        for inp in inputs:
            if cancel is not None and cancel.cancelled:
                return
            try:
                result = self.run(model, {**values, "inputs": (inp,)}, progress=progress, cancel=cancel)
            except Exception as e:  # noqa: BLE001 - one input's failure is its record; the run goes on
                yield {"source": inp.source, "error": describe(e)}
                continue
            if cancel is not None and cancel.cancelled:
                return  # an interrupted result is partial: not a record
            yield {"source": inp.source, **result.data, **({} if "text" in result.data else {"text": result.text})}

    def result(self, model: Model, text: str, markdown: str | None = None, /, **data: Any) -> TaskResult:
        """What :meth:`run` returns: ``--json`` data opens with the task's and the model's names,
        then ``data`` (any keys, ``text`` included)."""
        return TaskResult(text=text, data={"task": self.name, "model": model.info.name, **data}, markdown=markdown)

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

    def run_slash(self, model: Model, argline: str, progress: Progress | None = None,
                  cancel: CancelToken | None = None) -> str:
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


FILES = Param("files", "argument", metavar="[FILE|-]", multiple=True, files=True)
"""The FILE arguments of a task that reads files or stdin (``-`` or none)."""


class FileTask(Task):
    """A task over FILE arguments (:data:`FILES`, read with ``--encoding``) or stdin.

    ``values["inputs"]``, when present, holds the inputs already read (a job reads each file once,
    to hash it, and hands it over); ``values["memo"]`` a :class:`lmassist.jobs.memo.Memo`-like
    object (``get(key)``, ``put(key, value)``) where a chunked task keeps finished chunks.
    """

    reads_files = True

    def inputs(self, values: dict[str, Any]) -> list[TaskInput]:
        if values.get("inputs") is not None:
            return list(values["inputs"])
        paths = values.get("files") or ()
        for path in paths:  # here only from the chat: the command line runs a folder as a job
            if path != "-" and os.path.isdir(path):
                raise LMAssistError(f"{path} is a folder; give a file (for a whole folder, use the command "
                                    f"line: lmassist {self.name} {path} --out OUT)")
        return read_inputs(paths, values.get("encoding"))


class TaskLike(Protocol):
    """The least a registered object offers when it does not subclass :class:`Task`: a ``name`` and
    at least one way to run, ``run_slash`` (the chat), ``run`` (with a declaration, the command
    line builds a command from it) or ``command()`` (a click command of its own)."""

    name: str

    def run_slash(self, model: Model, argline: str, progress: Progress | None = None,
                  cancel: CancelToken | None = None) -> str: ...


# What a PluginTask takes from the object it wraps, when it has it; Task's defaults otherwise.
_DECLARATION = ("summary", "description", "params", "json_schema", "reads_files", "writes_output",
                "needs_model", "examples", "progress_unit")
_FACES = ("run_slash", "run", "command")
_HOOKS = ("check", "needs_files", "parse_slash")  # Task's methods a wrapped object may replace


class PluginTask(Task):
    """A plugin's task object that does not subclass :class:`Task`, wrapped once at registration
    so that the CLI, the TUI and ``lmassist tasks`` read one contract with one set of defaults."""

    def __init__(self, task: TaskLike) -> None:
        self.wrapped = task
        self.name = task.name
        for attr in _DECLARATION:
            if hasattr(task, attr):
                setattr(self, attr, getattr(task, attr))
        usage = getattr(task, "slash_usage", None)
        self._usage = usage if isinstance(usage, str) and usage else None
        self._faces = {face: method for face in _FACES if callable(method := getattr(task, face, None))}
        self._hooks = {hook: method for hook in _HOOKS if callable(method := getattr(task, hook, None))}

    @property
    def slash_usage(self) -> str:
        return self._usage or super().slash_usage

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        if "run" not in self._faces:
            raise LMAssistError(f"task {self.name!r} runs only in the chat app (/{self.name})")
        return self._faces["run"](model, values, progress=progress, cancel=cancel)

    def run_slash(self, model: Model, argline: str, progress: Progress | None = None,
                  cancel: CancelToken | None = None) -> str:
        if "run_slash" in self._faces:
            return self._faces["run_slash"](model, argline, progress=progress, cancel=cancel)
        if "run" not in self._faces:
            raise LMAssistError(f"task {self.name!r} runs only on the command line: lmassist {self.name}")
        return super().run_slash(model, argline, progress=progress, cancel=cancel)

    def check(self, values: dict[str, Any]) -> None:
        if "check" in self._hooks:
            self._hooks["check"](values)

    def needs_files(self, values: dict[str, Any]) -> bool:
        if "needs_files" in self._hooks:
            return bool(self._hooks["needs_files"](values))
        return super().needs_files(values)

    def parse_slash(self, argline: str) -> dict[str, Any]:
        if "parse_slash" in self._hooks:
            return self._hooks["parse_slash"](argline)
        return super().parse_slash(argline)

    def command(self) -> click.Command | None:
        if "command" in self._faces:
            return self._faces["command"]()
        if "run" not in self._faces:
            raise TypeError(f"task {self.name!r} has no command line: it offers neither command() nor run()")
        return None


def as_task(task: Task | TaskLike) -> Task:
    """``task`` checked against the contract: itself when it is a :class:`Task`, else wrapped in a
    :class:`PluginTask`. TypeError (which the registry reports as the plugin's failure) says what
    is missing."""
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"not a named task: a {type(task).__qualname__} object with no name")
    if not isinstance(task, Task):
        if not any(callable(getattr(task, face, None)) for face in _FACES):
            raise TypeError(f"task {name!r} offers no way to run: subclass lmassist.tasks.base.Task, "
                            "or give it run_slash(), run() or command()")
        task = PluginTask(task)
    bad = [p for p in task.params if not isinstance(p, Param)]
    if bad:
        raise TypeError(f"task {name!r} declares a parameter that is not a lmassist.tasks.base.Param: {bad[0]!r}")
    return task


def read_inputs(paths: tuple[str, ...] | list[str], encoding: str | None = None) -> list[TaskInput]:
    """The texts of FILE arguments (``-`` or none meaning stdin), each failure a one-line error."""
    if not paths:
        text = read_stdin()
        if text is None:
            raise LMAssistError("no input: give a FILE, or pipe text in and use '-'")
        return [TaskInput("stdin", _non_empty(text, "stdin"))]
    return [TaskInput("stdin" if p == "-" else p, _non_empty(read_one(p, encoding), p)) for p in paths]


def read_one(path: str, encoding: str | None = None) -> str:
    """One file's text; a non-UTF-8 file's error hints at ``--encoding``."""
    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return _read_encoded(path, encoding)
    try:
        return read_text_file(path)
    except LMAssistError as e:
        if "not UTF-8" in str(e):
            raise LMAssistError(f"{e}; pass --encoding (e.g. --encoding latin-1)") from None
        raise


def _read_encoded(path: str, encoding: str) -> str:
    """A file (or ``-``) decoded from ``encoding``, with the same one-line errors as UTF-8 input."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise LMAssistError(f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252") from None
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


def _non_empty(text: str, source: str) -> str:
    if not text.strip():
        raise LMAssistError(f"{source} is empty: nothing to work on")
    return text
