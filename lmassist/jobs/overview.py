"""``summarize --out DIR --overview``: one summary of the whole set, written to ``DIR/overview.md``
after the per-file summaries, from those summaries (read back one at a time, not the inputs)."""

from __future__ import annotations

from collections.abc import Iterator

from lmassist.errors import LMAssistError
from lmassist.jobs.memo import digest, open_memo
from lmassist.jobs.plan import JobPlan
from lmassist.jobs.runner import Job
from lmassist.jobs.sinks import TreeSink, signature
from lmassist.outputs import write_output
from lmassist.tasks import summarize

OVERVIEW_NAME = "overview.md"


def _summaries(sink: TreeSink, plan: JobPlan) -> Iterator[tuple[str, str]]:
    for inp in plan.inputs:
        path = sink.root / inp.rel
        if inp.rel != OVERVIEW_NAME and path.is_file() and sink.manifest.get(inp.rel):
            try:
                yield inp.rel, path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue


def write_overview(job: Job, plan: JobPlan) -> None:
    """Write DIR/overview.md from the summaries that are there (skipped, up-to-date ones included)."""
    sink = job.sink
    assert isinstance(sink, TreeSink)
    make = getattr(summarize, "overview", None)
    if make is None:
        raise LMAssistError("--overview is not available in this version of the summarize task")
    if any(inp.rel == OVERVIEW_NAME for inp in plan.inputs):
        raise LMAssistError(f"an input is named {OVERVIEW_NAME}: its summary is where the overview goes; "
                            f"leave it out with --exclude {OVERVIEW_NAME}")
    made_from = digest(*(sink.manifest.get(inp.rel) or "" for inp in plan.inputs))
    sig = signature(made_from, job.settings.model_name, job.options)
    target = sink.root / OVERVIEW_NAME
    if not job.settings.force and sink.manifest.get(OVERVIEW_NAME) == sig and target.is_file():
        return  # the summaries it was made from have not changed
    memo = open_memo(sink.memo_dir, made_from, job.settings.model_name, {**job.options, "overview": True})
    text = make(job.model(), _summaries(sink, plan), {**job.values, "memo": memo}, cancel=job.cancel)
    if job.cancel.cancelled:
        memo.close()
        return
    write_output(target, text if text.endswith("\n") else text + "\n")
    sink.manifest.put(OVERVIEW_NAME, sig)
    memo.remove()
    if job.reporter is not None:
        job.reporter.note(f"overview: {target}")
