"""Which model does which task: a measured table, the user's per-task setting, and the choice between them.

A task run on a model that cannot do it wastes minutes and gives nothing (the default chat model
"translating" a README for a quarter of an hour). So the choice is made from data, before any model
loads: ``task_models.json`` beside this module ranks the models we measured for each task with the
score ``eval-task`` printed, the baseline beside it (copying the source, the majority class...) and
the command that measured it; ``lmassist models rank TASK --write`` measures the installed models
again and stores the result in the user's config folder, where it wins over the shipped table.

:func:`choose_model` is the one entry point (the task commands call it before loading): the user's
``-m`` wins; then the ``tasks.TASK.model`` setting; then the best installed model the table says
can do the task. A model the table marks as unable is never used silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmassist.config import paths, warn
from lmassist.errors import LMAssistError
from lmassist.registry import Registry

SHIPPED_TABLE = Path(__file__).with_name("task_models.json")
USER_TABLE_NAME = "task_models.json"

# How a task reads in "translate needs a model that can translate".
ABILITY = {"translate": "translate", "sentiment": "label sentiment", "qa": "answer questions from a text",
           "summarize": "summarize"}


def setting_key(task: str) -> str:
    """The setting that fixes a task's model (``tasks.translate.model``)."""
    return f"tasks.{task}.model"


@dataclass(frozen=True)
class Measured:
    """One model's measured quality on one task, beside the baseline of the same run."""

    model: str
    score: float
    baseline: float
    able: bool
    seconds: float = 0.0  # how long the measurement took: a tie goes to the faster model



@dataclass(frozen=True)
class TaskRanking:
    """The models measured for one task, best first, and how they were measured."""

    task: str
    metric: str
    baseline_name: str
    command: str
    data: str
    rows: int
    min_gain: float
    models: tuple[Measured, ...] = field(default_factory=tuple)

    def find(self, model: str) -> Measured | None:
        return next((m for m in self.models if m.model == model), None)

    def describe(self, m: Measured) -> str:
        """Why a model counts as unable, in a few words for an error line."""
        return (f"{self.metric} {m.score:.3g}, {self.baseline_name} {m.baseline:.3g}, "
                f"able needs +{self.min_gain:g}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("task")
        out["models"] = [asdict(m) for m in self.models]
        return out

    @classmethod
    def from_dict(cls, task: str, raw: dict[str, Any]) -> TaskRanking:
        models = tuple(Measured(str(m["model"]), float(m["score"]), float(m["baseline"]), bool(m["able"]),
                                float(m.get("seconds", 0.0))) for m in raw.get("models", ()))
        return cls(task, str(raw["metric"]), str(raw["baseline_name"]), str(raw.get("command", "")),
                   str(raw.get("data", "")), int(raw.get("rows", 0)), float(raw.get("min_gain", 0.0)),
                   tuple(sorted(models, key=rank_key)))


def rank_key(m: Measured) -> tuple[bool, float, float]:
    """Able models first, then the higher score, then the faster: at equal quality, speed decides."""
    return (not m.able, -m.score, m.seconds)


def user_table_path() -> Path:
    return paths().config / USER_TABLE_NAME


def _read(path: Path) -> dict[str, TaskRanking]:
    """One table file; a damaged one costs only itself (a warning, then the other table)."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {task: TaskRanking.from_dict(task, entry) for task, entry in raw["tasks"].items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        warn(f"the task-model table {path} is damaged ({type(e).__name__}: {e}); ignored")
        return {}


def load_table() -> dict[str, TaskRanking]:
    """The shipped table, with the user's re-measured tasks (``models rank --write``) in place of its own."""
    return {**_read(SHIPPED_TABLE), **_read(user_table_path())}


def write_table(rankings: Iterable[TaskRanking], path: Path | None = None) -> Path:
    """Store rankings (merged task by task into what ``path`` already holds), atomically."""
    from lmassist.config import atomic_write_text

    path = path or user_table_path()
    merged = {**_read(path), **{r.task: r for r in rankings}}
    body = {"about": "Models ranked per task by 'lmassist models rank'; 'able': the score beats the baseline by min_gain.",
            "tasks": {task: merged[task].to_dict() for task in sorted(merged)}}
    atomic_write_text(path, json.dumps(body, indent=2) + "\n")
    return path


def choose_model(task: str, requested: str | None, registry: Registry | None = None) -> str | None:
    """The model to run ``task`` with, decided before anything loads; ``None`` means the default model.

    The user's ``-m`` wins (with a warning line when the table measured it unable); then the
    ``tasks.TASK.model`` setting; then, unless the user chose a default model of their own that
    the table does not mark unable, the best installed model that the table says can do the task.
    When the model that would run is measured unable and no installed one is able, a one-line
    :class:`LMAssistError` names the model to pull.
    """
    return explain_choice(task, requested, registry)[0]


def explain_choice(task: str, requested: str | None, registry: Registry | None = None) -> tuple[str | None, str]:
    """:func:`choose_model`'s answer and, in a few words, why (``lmassist models which TASK``)."""
    ranking = load_table().get(task)
    if requested:
        _warn_unable(ranking, requested, registry)
        return requested, "asked for with -m"
    reg = registry or Registry()
    fixed = reg.settings.get(setting_key(task))
    if isinstance(fixed, str) and fixed.strip() and fixed != "auto":
        _warn_unable(ranking, fixed, reg, f"as the {setting_key(task)} setting asks")
        return fixed, f"the {setting_key(task)} setting"
    if ranking is None:
        return None, f"no measurement for {task}: the default model"
    default = _full_name(reg, None)
    measured_default = ranking.find(default) if default else None
    if reg.settings.source("default_model") != "default" and (measured_default is None or measured_default.able):
        return None, f"your default model ({reg.settings.source('default_model')})"
    usable = _installed(reg)
    for m in ranking.models:
        if m.able and m.model in usable:
            return m.model, f"the best installed model measured able ({ranking.metric} {m.score:.3g} on {ranking.rows} rows)"
    if measured_default is not None and not measured_default.able:
        raise LMAssistError(_none_can(ranking, measured_default))
    return None, f"no installed model measured for {task}: the default model"


def _warn_unable(ranking: TaskRanking | None, requested: str, registry: Registry | None,
                 why: str = "as asked") -> None:
    if ranking is None:
        return
    try:
        name = _full_name(registry or Registry(), requested)
    except LMAssistError:
        return  # loading the model says what is wrong with the name
    measured = ranking.find(name) if name else None
    if measured is not None and not measured.able:
        warn(f"{name} was measured unable to {ABILITY.get(ranking.task, ranking.task)} "
             f"({ranking.describe(measured)}); using it {why}")


def _full_name(reg: Registry, name: str | None) -> str | None:
    try:
        return reg.resolve(name).full_name
    except LMAssistError:
        if name is None:
            return None
        raise


def _installed(reg: Registry) -> set[str]:
    """Installed models whose backend can run here, without asking any server."""
    usable = {n for n, b in reg.backends.items() if b.unavailable_reason() is None}
    return {s.full_name for s in reg.models() if s.installed and s.backend in usable}


def _none_can(ranking: TaskRanking, default: Measured) -> str:
    able = [m.model for m in ranking.models if m.able]
    what = ABILITY.get(ranking.task, ranking.task)
    pull = (f"run: lmassist models pull {able[0].split(':', 1)[-1]}" if able
            else f"measure others with: lmassist models rank {ranking.task} --models NAME --write")
    return (f"{ranking.task} needs a model that can {what}; none installed can "
            f"({default.model}: {ranking.describe(default)}) — {pull}")
