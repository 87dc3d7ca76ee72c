"""The job pipeline in-process, with a task that needs no model: --concurrency keeps N inputs in
flight and still writes results in input order; a stop keeps what finished; a task's own streaming
face (records) gets the inputs lazily and its error records are counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lmassist.generation import CancelToken
from lmassist.jobs.inputs import collect
from lmassist.jobs.runner import Job, JobSettings, streams_records
from lmassist.jobs.sinks import StreamSink, TreeSink
from lmassist.tasks.base import FILES, FileTask, TaskInput, TaskResult

# Each input's text starts with how long the task takes on it: the first is the slowest.
DELAYS = [0.6, 0.05, 0.3, 0.0, 0.2, 0.1]


class Slow(FileTask):
    name = "slow"
    params = (FILES,)
    needs_model = False

    def __init__(self, stop_after: int | None = None, cancel: CancelToken | None = None) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.runs = 0
        self.stop_after, self.cancel = stop_after, cancel

    def run(self, model: Any, values: dict[str, Any], progress: Any = None, cancel: Any = None) -> TaskResult:
        inp = self.inputs(values)[0]
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(float(inp.text.split()[0]))
        with self.lock:
            self.in_flight -= 1
            self.runs += 1
            if self.stop_after is not None and self.runs == self.stop_after and self.cancel is not None:
                self.cancel.cancel()  # as Ctrl+C does, after this input's result
        text = inp.text.upper()
        return TaskResult(text=text, data={"task": self.name, "text": text})


class PerLine(Slow):
    """A task with a streaming face of its own: one record per line, an error record for 'bad'."""

    def __init__(self) -> None:
        super().__init__()
        self.pulled: list[str] = []

    def records(self, model: Any, values: dict[str, Any], inputs: Iterable[TaskInput], progress: Any = None,
                cancel: Any = None) -> Iterator[dict[str, Any]]:
        for inp in inputs:
            self.pulled.append(inp.source)
            if "bad" in inp.text:
                yield {"source": inp.source, "error": "cannot label this one"}
                continue
            for n, line in enumerate(inp.text.splitlines(), 1):
                yield {"source": inp.source, "line": n, "label": line.strip()[::-1]}


def make_inputs(folder: Path) -> Path:
    folder.mkdir()
    for i, delay in enumerate(DELAYS):
        (folder / f"f{i}.txt").write_text(f"{delay} input number {i}\n")
    return folder


def settings(n: int) -> JobSettings:
    return JobSettings("none", lambda: None, concurrency=n)


def test_concurrency_keeps_n_in_flight_and_writes_in_input_order(tmp_path: Path, capsys) -> None:
    inputs = collect([str(make_inputs(tmp_path / "in"))])
    task = Slow()
    tally = Job(task, {"files": ()}, settings(3), StreamSink(None, tmp_path / "memo")).run(inputs)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == [i.path for i in inputs]
    assert [r["text"].split()[-1] for r in records] == [str(i) for i in range(len(DELAYS))]
    assert task.most_in_flight == 3
    assert tally.done == len(DELAYS) and tally.failed == 0


def test_a_tree_job_records_outputs_in_input_order_under_concurrency(tmp_path: Path) -> None:
    inputs = collect([str(make_inputs(tmp_path / "in"))])
    out = tmp_path / "out"
    tally = Job(Slow(), {"files": ()}, settings(4), TreeSink(out, "skip")).run(inputs)
    assert tally.done == len(DELAYS)
    keys = [json.loads(line)["k"] for line in (out / ".lmassist" / "manifest.jsonl").read_text().splitlines()]
    assert keys == [f"f{i}.txt" for i in range(len(DELAYS))]
    assert (out / "f0.txt").read_text() == "0.6 INPUT NUMBER 0\n"


def test_a_stop_keeps_the_finished_outputs_and_the_rerun_does_the_rest(tmp_path: Path) -> None:
    inputs = collect([str(make_inputs(tmp_path / "in"))])
    out = tmp_path / "out"
    cancel = CancelToken()
    first = Job(Slow(stop_after=2, cancel=cancel), {"files": ()}, settings(1), TreeSink(out, "skip"),
                cancel=cancel).run(inputs)
    assert first.done == 1  # the second result came after the stop: partial work is not an output
    assert sorted(p.name for p in out.glob("*.txt")) == ["f0.txt"]
    task = Slow()
    second = Job(task, {"files": ()}, settings(1), TreeSink(out, "skip")).run(inputs)
    assert (second.done, second.skipped, task.runs) == (len(DELAYS) - 1, 1, len(DELAYS) - 1)


def test_a_streaming_face_pulls_inputs_lazily_and_counts_error_records(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("good\nfine\n")
    (folder / "b.txt").write_text("bad\n")
    (folder / "c.bin").write_bytes(b"\x00\x01")
    (folder / "d.txt").write_text("nice\n")
    task = PerLine()
    assert streams_records(task) and not streams_records(Slow())
    tally = Job(task, {"files": ()}, settings(1), StreamSink(None, tmp_path / "memo")).run_records(
        collect([str(folder)]))
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(r["source"]).name, r.get("line")) for r in records] == [
        ("a.txt", 1), ("a.txt", 2), ("b.txt", None), ("d.txt", 1)]
    assert records[2]["error"] == "cannot label this one"
    assert (tally.done, tally.failed, tally.passed) == (2, 1, 1)
    assert [Path(p).name for p in task.pulled] == ["a.txt", "b.txt", "d.txt"]


def test_a_stream_into_an_output_file_holds_every_finished_record(tmp_path: Path) -> None:
    inputs = collect([str(make_inputs(tmp_path / "in"))])
    target = tmp_path / "records.jsonl"
    target.write_text("old\n")
    cancel = CancelToken()
    Job(Slow(stop_after=3, cancel=cancel), {"files": ()}, settings(1), StreamSink(str(target), tmp_path / "memo"),
        cancel=cancel).run(inputs)
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [Path(r["source"]).name for r in records] == ["f0.txt", "f1.txt"]  # the third was cut short
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
