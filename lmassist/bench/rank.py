"""Measuring which model can do which task: the figures behind ``lmassist models rank``.

Each task is measured the way ``lmassist eval-task TASK FILE --limit N`` measures it (the same
runners, the same first N rows), reduced to one score beside the simplest honest baseline of the
same run. A model is *able* when it beats that baseline by the task's margin: a translation must
beat copying the source by a clear distance, since fragments of the right language already lift
chrF above the copy (the default chat model's "translations" do, and are unusable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmassist.bench.common import dev_file
from lmassist.bench.metrics import load_jsonl
from lmassist.bench.sentiment import run_sentiment
from lmassist.bench.tasks import run_translation
from lmassist.errors import LMAssistError
from lmassist.task_models import Measured, TaskRanking, rank_key


def _translate(model: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
    report = run_translation(model, rows, "fr")
    return report[1]["chrF"], report[0]["chrF"]


def _sentiment(model: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
    report = run_sentiment(model, rows, ["default"])
    return report[1]["accuracy"], report[0]["accuracy"]


@dataclass(frozen=True)
class TaskEval:
    """How one task is measured for the table."""

    file: str
    metric: str
    baseline_name: str
    min_gain: float  # how far above the baseline an able model scores
    limit: int | None
    run: Callable[[Any, list[dict[str, Any]]], tuple[float, float]]


TASK_EVALS: dict[str, TaskEval] = {
    "translate": TaskEval("translation-en-fr-dev.jsonl", "chrF", "copying the source", 15.0, 40, _translate),
    "sentiment": TaskEval("sentiment-dev.jsonl", "accuracy", "the majority class", 0.1, None, _sentiment),
}


def task_eval(task: str) -> TaskEval:
    if task not in TASK_EVALS:
        raise LMAssistError(f"models rank measures {', '.join(TASK_EVALS)}, not {task!r} (summarize's "
                            "default extractive mode does not depend on the model; qa is not measured yet)")
    return TASK_EVALS[task]


def rows_for(task: str, data: str, limit: int | None) -> tuple[Path, list[dict[str, Any]]]:
    spec = task_eval(task)
    path = dev_file(data, spec.file)
    return path, load_jsonl(path, limit if limit is not None else spec.limit)


def measure(task: str, name: str, model: Any, rows: list[dict[str, Any]]) -> Measured:
    """Model ``name``'s score on ``rows`` beside the baseline, and whether it clears the margin."""
    spec = task_eval(task)
    start = time.perf_counter()
    score, baseline = spec.run(model, rows)
    return Measured(name, round(score, 4), round(baseline, 4), score >= baseline + spec.min_gain,
                    round(time.perf_counter() - start, 1))


def ranking(task: str, measured: list[Measured], path: Path, rows: int, limit: int | None) -> TaskRanking:
    spec = task_eval(task)
    command = f"lmassist models rank {task}" + (f" --limit {limit}" if limit is not None else "")
    return TaskRanking(task, spec.metric, spec.baseline_name, command, path.name, rows, spec.min_gain,
                       tuple(sorted(measured, key=rank_key)))
