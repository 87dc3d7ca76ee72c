"""Memory of a folder job: peak RSS of the same job over a 10 MB and a 1 GB folder.

The folders are generated from real text (tinyshakespeare, cut into ~1 MB files across
subfolders) in a temporary folder, after checking free disk space. Each job runs in a child process
that reports its own peak RSS: the job pipeline (list, read and hash each file once, run the task,
write each output atomically, record it in the manifest) with a task that needs no model, so the
figure is the job's own and a 1 GB run takes minutes, not hours. ``--task summarize`` runs the real
``lmassist summarize DIR --out OUT`` on the default model instead (slow: use smaller sizes). The
target: the large folder's peak within +100 MB of the small one's. Prints figures, asserts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import DATA_DIR, machine, report
from lmassist.generation import Model
from lmassist.system import rusage_to_mb
from lmassist.tasks.base import FILES, FileTask, Progress, TaskResult

SHAKESPEARE = f"{DATA_DIR}/tinyshakespeare.txt"
FILE_BYTES = 1_000_000
FILES_PER_FOLDER = 50
SIZES = {"10MB": 10_000_000, "40MB": 40_000_000, "100MB": 100_000_000, "1GB": 1_000_000_000}


class LineStats(FileTask):
    """A task with no model: the lines and characters of each input (a light load, so the figures
    are the job's own: listing, reading, hashing, writing, recording)."""

    name = "linestats"
    params = (FILES,)
    needs_model = False

    def run(self, model: Model | None, values: dict[str, Any], progress: Progress | None = None,
            cancel: Any = None) -> TaskResult:
        inp = self.inputs(values)[0]
        text = f"{inp.text.count(chr(10))} lines, {len(inp.text)} characters"
        return TaskResult(text=text, data={"task": self.name, "text": text})


_CHILD = """
import json, resource, sys, time
from lmassist.bench.jobs import LineStats
from lmassist.jobs.plan import plan_job
from lmassist.jobs.runner import Job, JobSettings
from lmassist.jobs.sinks import TreeSink
from lmassist.system import rusage_to_mb
task = LineStats()
values = {"files": (sys.argv[1],), "encoding": None}
plan = plan_job(task.name, values, {"out": sys.argv[2]}, None, False)
t0 = time.monotonic()
tally = Job(task, values, JobSettings("none", lambda: None), TreeSink(plan.out, plan.other)).run(plan.inputs)
print(json.dumps({"seconds": time.monotonic() - t0, "done": tally.done, "failed": tally.failed,
                  "peak_mb": rusage_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}))
"""


def make_folder(root: Path, size: int, source: Path) -> int:
    """``size`` bytes of real text in ~1 MB files, :data:`FILES_PER_FOLDER` to a subfolder."""
    text = source.read_bytes()
    n = max(1, size // FILE_BYTES)
    for i in range(n):
        folder = root / f"part{i // FILES_PER_FOLDER:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        start = (i * 7919) % max(1, len(text) - FILE_BYTES)
        body = (text[start:] + text)[:FILE_BYTES] if len(text) >= FILE_BYTES else (text * (FILE_BYTES // len(text) + 1))[:FILE_BYTES]
        cut = body.rfind(b"\n") + 1 or len(body)
        (folder / f"play{i:05d}.txt").write_bytes(body[:cut])
    return n


def run_child(argv: list[str]) -> tuple[dict[str, Any], float]:
    """Run ``argv`` and return what it printed (JSON, when it did) and its own peak RSS in MB, read
    from the kernel's accounting of that one child (``wait4``)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise click.ClickException(f"the job failed: {err.decode(errors='replace').strip()[-300:]}")
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        data = {"seconds": time.monotonic() - t0}
    return data, rusage_to_mb(usage.ru_maxrss)


def measure(size_name: str, work: Path, source: Path, task: str) -> dict[str, Any]:
    folder, out = work / f"in-{size_name}", work / f"out-{size_name}"
    t0 = time.monotonic()
    files = make_folder(folder, SIZES[size_name], source)
    made = time.monotonic() - t0
    if task == "linestats":
        argv = [sys.executable, "-c", _CHILD, str(folder), str(out)]
    else:
        argv = [sys.executable, "-m", "lmassist", task, str(folder), "--out", str(out)]
    data, peak = run_child(argv)
    seconds = data.get("seconds") or 0.0
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"files": files, "peak MB": round(peak, 1), "seconds": round(seconds, 1),
            "MB/s": round(SIZES[size_name] / 1e6 / seconds, 3) if seconds else None, "generate s": round(made, 1)}


@click.command("jobs")
@click.option("--sizes", default="10MB,1GB", show_default=True, help="Folder sizes to compare: 10MB, 40MB, 100MB, 1GB.")
@click.option("--task", type=click.Choice(("linestats", "summarize")), default="linestats", show_default=True,
              help="linestats: the job pipeline with a task that needs no model; summarize: the real command "
              "on the default model (slow).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Where to generate the folders (default: a temp dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_jobs(sizes: str, task: str, workdir: str | None, as_json: bool) -> None:
    """Peak memory of a folder job on a small and a large folder: the large one's within +100 MB."""
    names = [s.strip() for s in sizes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SIZES]
    if unknown or not names:
        raise click.ClickException(f"unknown size {unknown[0] if unknown else sizes!r}; choose from {', '.join(SIZES)}")
    source = Path(SHAKESPEARE)
    if not source.is_file():
        raise click.ClickException(f"{SHAKESPEARE} is missing (run from the checkout beside shared/)")
    base = Path(workdir or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    need = max(SIZES[s] for s in names) * 2.2  # the input and its outputs' worst case, one size at a time
    free = shutil.disk_usage(base).free
    if free < need:
        raise click.ClickException(f"{base} has {free / 1e9:.1f} GB free; the {max(names, key=SIZES.get)} run "
                                   f"needs about {need / 1e9:.1f} GB (pass --workdir or smaller --sizes)")
    figures: dict[str, Any] = {**machine(), "load": round(os.getloadavg()[0], 1), "task": task}
    with tempfile.TemporaryDirectory(prefix="lmassist-bench-jobs-", dir=base) as tmp:
        rows = {name: measure(name, Path(tmp), source, task) for name in names}
    for name, row in rows.items():
        figures[name] = row
    if len(names) >= 2:
        figures["peak growth MB"] = round(rows[names[-1]]["peak MB"] - rows[names[0]]["peak MB"], 1)
    report(figures, {"peak growth MB": "<= 100"}, as_json)


COMMANDS = (bench_jobs,)
