"""The right model for the task: the measured table, the per-task setting, and the one-line refusal,
through the real CLI on the installed models (``lmassist models which|rank``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import USER_MODELS, assert_one_line_error, run_cli

from lmassist.errors import LMAssistError
from lmassist.modelfiles import DEFAULT_GGUF
from lmassist.task_models import SHIPPED_TABLE, choose_model, load_table, user_table_path

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eval"
GEMMA = USER_MODELS / "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture
def only_default_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder holding the default model and nothing else (a fresh install)."""
    folder = tmp_path / "models"
    folder.mkdir()
    os.symlink(USER_MODELS / DEFAULT_GGUF.filename, folder / DEFAULT_GGUF.filename)
    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(folder))
    return folder


def test_the_shipped_table_ranks_able_models_first_with_their_command():
    table = load_table()
    translate = table["translate"]
    assert translate.command.startswith("lmassist models rank translate")
    assert [m.able for m in translate.models] == sorted((m.able for m in translate.models), reverse=True)
    assert translate.find("llamacpp:smollm2-135m-instruct").able is False  # the README's "cannot translate"
    assert translate.find("llamacpp:gemma3-270m").able is True
    raw = json.loads(SHIPPED_TABLE.read_text())
    for entry in raw["tasks"].values():
        for m in entry["models"]:
            assert m["able"] == (m["score"] >= m["baseline"] + entry["min_gain"]), m


@pytest.mark.skipif(not GEMMA.exists(), reason="gemma3-270m is not pulled here")
def test_translate_picks_the_best_installed_able_model():
    proc = run_cli("models", "which", "translate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("llamacpp:gemma3-270m ") and "measured able" in proc.stdout


def test_no_installed_model_can_translate_is_one_line_naming_what_to_pull(only_default_model):
    proc = run_cli("models", "which", "translate")
    line = assert_one_line_error(proc, "translate needs a model that can translate",
                                 "lmassist models pull gemma3-270m")
    assert "llamacpp:smollm2-135m-instruct" in line
    with pytest.raises(LMAssistError, match="models pull gemma3-270m"):
        choose_model("translate", None)


def test_minus_m_wins_but_an_unable_model_is_never_used_silently(only_default_model):
    proc = run_cli("models", "which", "translate", "-m", "smollm2-135m-instruct")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("llamacpp:smollm2-135m-instruct ")
    assert "measured unable to translate" in proc.stderr and "using it as asked" in proc.stderr


def test_the_task_setting_wins_over_the_table_and_is_checked_when_set():
    proc = run_cli("settings", "set", "tasks.translate.model", "smollm2-135m-instruct")
    assert proc.returncode == 0, proc.stderr
    assert "tasks.translate.model = llamacpp:smollm2-135m-instruct" in proc.stdout
    proc = run_cli("models", "which", "translate")
    assert proc.stdout.startswith("llamacpp:smollm2-135m-instruct ") and "tasks.translate.model" in proc.stdout
    assert "measured unable to translate" in proc.stderr and "setting asks" in proc.stderr  # never silently
    assert_one_line_error(run_cli("settings", "set", "tasks.translate.model", "no-such-model"), "no-such-model")
    assert run_cli("settings", "set", "tasks.translate.model", "auto").returncode == 0
    assert "measured able" in run_cli("models", "which", "translate").stdout or not GEMMA.exists()


def test_a_default_model_of_your_own_is_kept_unless_it_is_measured_unable(only_default_model):
    """Told otherwise: a chosen default that the table has no figure for runs the task."""
    assert run_cli("settings", "set", "default_model", "smollm2-135m-instruct").returncode == 0
    proc = run_cli("models", "which", "qa")
    assert proc.returncode == 0 and proc.stdout.startswith("llamacpp:smollm2-135m-instruct ")
    # ...but one measured unable still refuses, before any model loads.
    assert_one_line_error(run_cli("models", "which", "translate"), "lmassist models pull gemma3-270m")


def test_a_damaged_user_table_warns_and_the_shipped_one_applies(only_default_model):
    path = user_table_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    proc = run_cli("models", "which", "translate")
    assert "task-model table" in proc.stderr and "damaged" in proc.stderr
    assert "lmassist models pull gemma3-270m" in proc.stderr


@pytest.mark.skipif(not (DEV / "translation-en-fr-dev.jsonl").exists(), reason="no shared dev file here")
def test_rank_measures_installed_models_and_write_makes_task_commands_use_it(only_default_model):
    proc = run_cli("models", "rank", "translate", "--limit", "3", "--data", str(DEV), "--write", "--json",
                   "--models", "llamacpp:smollm2-135m-instruct",
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)["translate"]
    assert [m["model"] for m in shown["models"]] == ["llamacpp:smollm2-135m-instruct"]
    m = shown["models"][0]
    assert shown["rows"] == 3 and m["able"] == (m["score"] >= m["baseline"] + shown["min_gain"])
    stored = json.loads(user_table_path().read_text())["tasks"]["translate"]
    assert stored["models"] == shown["models"] and stored["command"] == "lmassist models rank translate --limit 3"
    proc = run_cli("models", "which", "translate")
    if m["able"]:
        assert proc.stdout.startswith("llamacpp:smollm2-135m-instruct ")
    else:  # the re-measured table has no able model: the refusal says how to measure another
        assert_one_line_error(proc, "lmassist models rank translate")


def test_rank_refuses_a_missing_dev_set_or_unknown_task_before_loading(tmp_path):
    assert_one_line_error(run_cli("models", "rank", "translate", "--data", str(tmp_path)), "--data")
    assert_one_line_error(run_cli("models", "rank", "summarize"), "summarize")
