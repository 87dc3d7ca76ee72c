"""The one progress display (lmassist.progress), and training's lines built on it."""

from __future__ import annotations

import io

import pytest

from lmassist.commands.common import ProgressReporter as Reexported
from lmassist.progress import ProgressReporter


def test_commands_common_still_names_it():
    assert Reexported is ProgressReporter


def test_a_note_is_a_plain_line_off_a_terminal_and_nothing_when_disabled():
    out = io.StringIO()
    reporter = ProgressReporter("demo", stream=out, interval=0)
    with reporter as progress:
        progress(1, 2)
        reporter.note("step 1: val 2.0")
    assert out.getvalue() == "step 1: val 2.0\n"
    quiet = io.StringIO()
    reporter = ProgressReporter("demo", stream=quiet, interval=0.001, enabled=False)
    with reporter as progress:
        progress(1, 2)
        reporter.note("hidden")
    assert quiet.getvalue() == ""


def test_training_lines_keep_their_format():
    torch = pytest.importorskip("torch")  # noqa: F841 - train imports it
    from lmassist.inhouse.train import TrainingProgress

    steps = TrainingProgress(True, 40, None)
    steps.started_at = 0.0
    steps.advance(3, 1.5, 2.0, 1234.4)
    assert steps.status_line() == "train: step 3/40  loss 2.000  ppl 7.39  1,234 tok/s"
    budget = TrainingProgress(True, None, 60.0)
    budget.advance(7, 12.2, 1.0, 10.0)
    assert budget.status_line().startswith("train: step 7, 12/60 s  loss 1.000")
    assert budget.total == 60.0 and budget.done == 12.2
