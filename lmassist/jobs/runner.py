"""A task over many inputs, one pipeline for a mirrored ``--out`` tree and a JSON Lines stream.

Each input is read once (hash and text), skipped when its output is up to date, run with its own
memo (``values["memo"]``: finished chunks survive Ctrl+C and SIGKILL), and its result written
before the memo is removed, so at any moment a file is either finished and recorded, or resumable.
A failure on one input is one line on stderr and a count; the run goes on. With ``concurrency`` N,
N inputs are in flight and results are still written in input order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lmassist.errors import LMAssistError, describe
from lmassist.generation import CancelToken, Model
from lmassist.jobs.inputs import JobInput, Loaded, load
from lmassist.jobs.memo import Memo, memo_path, open_memo
from lmassist.jobs.sinks import StreamSink, TreeSink, signature
from lmassist.progress import ProgressReporter
from lmassist.tasks.base import Task, TaskInput, TaskResult

# Options of the job itself: they change which inputs run and where results go, not a result.
JOB_OPTIONS = ("out", "include", "exclude", "files_from", "other", "force", "concurrency", "overview", "jsonl")
_NOT_OPTIONS = frozenset(("files", "inputs", "memo", *JOB_OPTIONS))


def task_options(values: dict[str, Any]) -> dict[str, Any]:
    """The values that change a result (``--to fr``, ``--length short``, ``--encoding``)."""
    return {k: v for k, v in sorted(values.items()) if k not in _NOT_OPTIONS}


@dataclass
class Tally:
    """What became of each input."""

    done: int = 0
    skipped: int = 0  # up to date
    failed: int = 0
    copied: int = 0  # other files copied (--other copy)
    passed: int = 0  # other files left out (--other skip)
    lines: int = 0  # input lines of the finished inputs (the rate on the bar)
    reused: int = 0  # finished chunks found in memos (left by an interrupted run)

    def summary(self) -> str:
        parts = [f"{self.done} done", f"{self.skipped} up to date", f"{self.failed} failed"]
        if self.copied:
            parts.append(f"{self.copied} other files copied")
        if self.passed:
            parts.append(f"{self.passed} other files skipped")
        if self.reused:
            parts.append(f"{self.reused} finished chunks reused")
        return ", ".join(parts)


def refuse_concurrency(concurrency: int, model: Model | None) -> None:
    """One line, before any work, when several requests at once would overlap on a local model."""
    if concurrency > 1 and model is not None and not model.parallel_safe:
        raise LMAssistError(f"--concurrency {concurrency} needs a model that serves requests in parallel "
                            f"(a server); {model.info.name} runs one request at a time: leave --concurrency out")


@dataclass
class JobSettings:
    """How a job runs: the model (resolved name for signatures, loaded on first need), the input
    encoding, whether up-to-date outputs are redone, and how many inputs are in flight."""

    model_name: str
    load_model: Callable[[], Model | None]
    encoding: str | None = None
    force: bool = False
    concurrency: int = 1


@dataclass
class _Pending:
    inp: JobInput
    sig: str
    memo: Memo
    lines: int
    model: Model | None
    task_input: TaskInput
    future: Any = None


class _Now:
    """A result computed on the spot: the one-at-a-time path needs no thread."""

    def __init__(self, call: Callable[[], TaskResult]) -> None:
        self._error: BaseException | None = None
        self._value: TaskResult | None = None
        try:
            self._value = call()
        except Exception as e:  # noqa: BLE001 - re-raised by result(), like a Future
            self._error = e

    def result(self) -> TaskResult:
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass
class _Bar:
    """The one progress bar of a run: files done of all, input lines per second, the ETA."""

    reporter: ProgressReporter | None
    total: int
    finished: int = 0
    lines: int = 0
    started: float = field(default_factory=time.monotonic)

    def step(self, lines: int = 0, detail: str = "") -> None:
        self.lines += lines
        self.show(detail)

    def show(self, detail: str = "") -> None:
        if self.reporter is None:
            return
        elapsed = time.monotonic() - self.started
        rate = self.lines / elapsed if elapsed > 0 else 0.0
        info = (f"{rate:,.0f} lines/s" if rate >= 10 else f"{rate:.1f} lines/s") if self.lines else ""
        self.reporter.update(self.finished, self.total, info=" ".join(x for x in (info, detail) if x))

    def note(self, text: str) -> None:
        if self.reporter is not None:
            self.reporter.note(text)


class Job:
    """One task over a list of inputs into one sink (:class:`TreeSink` or :class:`StreamSink`)."""

    def __init__(self, task: Task, values: dict[str, Any], settings: JobSettings, sink: TreeSink | StreamSink,
                 reporter: ProgressReporter | None = None, cancel: CancelToken | None = None) -> None:
        self.task, self.values, self.settings, self.sink = task, values, settings, sink
        self.reporter = reporter
        self.cancel = cancel or CancelToken()
        self.options = task_options(values)
        self.tally = Tally()
        self._model: Model | None = None
        self._model_loaded = False
        self._bar = _Bar(reporter, 0)

    # -- the model, loaded when the first input needs it (an up-to-date run loads nothing) --------

    def model(self) -> Model | None:
        if not self._model_loaded:
            self._model = self.settings.load_model()
            self._model_loaded = True
            refuse_concurrency(self.settings.concurrency, self._model)
        return self._model

    # -- one input at a time, in order -------------------------------------------------------------

    def run(self, inputs: list[JobInput]) -> Tally:
        self._bar = _Bar(self.reporter, len(inputs))
        if self.settings.concurrency > 1:
            self.model()  # refuse a local model before any work
        n = max(1, self.settings.concurrency)
        pending: deque[_Pending] = deque()
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="lmassist-job") if n > 1 else None
        try:
            for inp in inputs:
                if self.cancel.cancelled:
                    break
                item = self._prepare(inp)
                if item is None:
                    self._bar.finished += 1
                    self._bar.show()
                    continue
                item.future = self._start(item, pool)
                pending.append(item)
                while len(pending) >= n:
                    self._finish(pending.popleft())
            while pending:
                self._finish(pending.popleft())
        finally:
            for item in pending:  # a second Ctrl+C: what finished is already in each memo
                item.memo.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.sink.close()
        return self.tally

    def _prepare(self, inp: JobInput) -> _Pending | None:
        """Read, compare with what is recorded, copy other files: None when nothing is left to run."""
        try:
            loaded = load(inp, self.settings.encoding)
            sig = signature(loaded.digest, self.settings.model_name, self.options)
            if loaded.kind == "other":
                self._other(inp, loaded, sig)
                return None
            if not self.settings.force and self.sink.is_current(inp, sig):
                # a run killed between recording the output and dropping its memo left one behind
                memo_path(self.sink.memo_dir, loaded.digest, self.settings.model_name, self.options).unlink(
                    missing_ok=True)
                self.tally.skipped += 1
                return None
            if isinstance(self.sink, TreeSink):
                self.sink.target(inp)  # two inputs onto one output: fail before running either
        except LMAssistError as e:
            self._fail(inp, e)
            return None
        model = self.model()
        memo = open_memo(self.sink.memo_dir, loaded.digest, self.settings.model_name, self.options)
        return _Pending(inp, sig, memo, loaded.text.count("\n") + 1, model,
                        TaskInput(inp.path if inp.path != "-" else "stdin", loaded.text))

    def _other(self, inp: JobInput, loaded: Loaded, sig: str) -> None:
        if self.sink.other(inp, loaded, sig):
            self.tally.copied += 1
        else:
            self.tally.passed += 1

    def _start(self, item: _Pending, pool: ThreadPoolExecutor | None) -> Future[TaskResult] | _Now:
        values = {**self.values, "inputs": (item.task_input,), "memo": item.memo}
        model = item.model
        progress = None
        if pool is None:
            def progress(done: int, total: int | None) -> None:
                self._bar.show(f"{item.inp.rel} {done}/{total or '?'}")

        def call() -> TaskResult:
            return self.task.run(model, values, progress=progress, cancel=self.cancel)

        return pool.submit(call) if pool is not None else _Now(call)

    def _finish(self, item: _Pending) -> None:
        """Write one result (in input order), then drop its memo; an interrupted one keeps it."""
        try:
            result = item.future.result()
            self.tally.reused += item.memo.hits
            if self.cancel.cancelled:  # partial: its finished chunks stay in the memo
                item.memo.close()
                return
            self.sink.write(item.inp, item.sig, result.text, result.data)
        except Exception as e:  # noqa: BLE001 - one input's failure is reported; the run goes on
            item.memo.close()
            self._fail(item.inp, e)
            return
        item.memo.remove()
        self.tally.done += 1
        self.tally.lines += item.lines
        self._bar.finished += 1
        self._bar.step(item.lines)

    def _fail(self, inp: JobInput, error: BaseException) -> None:
        self.tally.failed += 1
        self._bar.finished += 1
        self._bar.note(f"failed: {inp.path}: {describe(error)}")

    # -- a task with a streaming face of its own (batched sentiment) -------------------------------

    def run_records(self, inputs: list[JobInput]) -> Tally:
        """Records from the task's own :meth:`~lmassist.tasks.base.Task.records`, which may batch
        across inputs; the inputs are read lazily, as it pulls them."""
        assert isinstance(self.sink, StreamSink)
        self._bar = _Bar(self.reporter, len(inputs))
        failed: set[str] = set()
        pulled: list[str] = []
        try:
            model = self.model()
            def progress(done: int, total: int | None) -> None:
                self._bar.show(f"{done:,} records")

            values = {**self.values, "concurrency": self.settings.concurrency}  # a task may overlap requests
            for record in self.task.records(model, values, self._lazy(inputs, pulled),
                                            progress=progress, cancel=self.cancel):
                if "error" in record and record.get("source") not in failed:
                    failed.add(str(record.get("source")))
                    self._fail(JobInput(str(record.get("source")), ""), LMAssistError(str(record["error"])))
                self.sink.record(record)
        finally:
            self.sink.close()
        self.tally.done = len([p for p in pulled if p not in failed])
        return self.tally

    def _lazy(self, inputs: list[JobInput], pulled: list[str]) -> Iterator[TaskInput]:
        for inp in inputs:
            if self.cancel.cancelled:
                return
            try:
                loaded = load(inp, self.settings.encoding)
            except LMAssistError as e:
                self._fail(inp, e)
                self.sink.record({"source": inp.path, "error": str(e)})
                continue
            if loaded.kind == "other":
                self.tally.passed += 1
                self._bar.finished += 1
                continue
            self._bar.finished = len(pulled)  # the task asks for the next input: the earlier ones are done
            self._bar.step(loaded.text.count("\n") + 1)
            pulled.append(inp.path)
            yield TaskInput(inp.path if inp.path != "-" else "stdin", loaded.text)


def streams_records(task: Task) -> bool:
    """True when the task has a streaming face of its own (the default runs one input at a time)."""
    return type(task).records is not Task.records
