"""The lmassist-proofread task plugin: structure kept, code untouched, bad edits refused, real runs.

Most tests use a scripted model, so they check what reaches the model and what comes back exactly;
the last ones run the real default model through the real command line, with the plugin found
through its entry point as if installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from lmassist.commands.tasks import command_for
from lmassist.generation import CancelToken, LMAssistError, Model, ModelInfo, StreamRequest
from lmassist.plugins import PluginManager
from lmassist.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "lmassist-proofread"
sys.path.insert(0, str(PLUGIN_DIR))

import lmassist_proofread  # noqa: E402
from lmassist_proofread.task import Proofreader  # noqa: E402

DOC = """\
# Meeting nots

Their was a long discusion about the budget,
and we decided too spend less on travel.

- The team agree to meet evry monday.
- Run `make tset` before you push.

```python
def teh_function():  # a typo that is code, not prose
    return 1
```

| col | typo |
|-----|------|
| a   | teh  |

> This quote have a mistake.
"""

TYPOS = {"nots": "notes", "Their was": "There was", "discusion": "discussion", "too spend": "to spend",
         "agree to": "agrees to", "evry monday": "every Monday", "have a": "has a", "teh": "the"}


def fix(text: str) -> str:
    for bad, good in TYPOS.items():
        text = text.replace(bad, good)
    return text


class ScriptedModel(Model):
    """A chat model that answers ``reply(text)`` for the text it is asked to edit, and records it."""

    def __init__(self, reply: Callable[[str], str] = fix, chat_template: bool = True) -> None:
        self.reply = reply
        self.seen: list[str] = []
        self.info = ModelInfo(name="scripted:editor", backend="scripted", context_length=300, chat_template=chat_template)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        if request.messages is not None:
            text = request.messages[-1].content.split("\n\n", 1)[1]
            text = text.removeprefix("Text: ")
        else:
            text = request.prompt.rsplit("Original: ", 1)[1].rsplit("\n", 1)[0]
        self.seen.append(text)
        for word in self.reply(text).split(" "):
            if request.cancel.cancelled:
                return
            yield word + " "

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.fixture
def registry() -> Registry:
    pm = PluginManager(load_entry_points=False)
    pm.register(lmassist_proofread, name="lmassist-proofread")
    return Registry(pm)


def run(registry: Registry, model: Model, path: Path, *args: str) -> str:
    return registry.task("proofread").run_slash(model, " ".join([str(path), *args]))


def test_the_task_registers_through_the_hook(registry):
    task = registry.task("proofread")
    assert task.summary and "--tone" in task.slash_usage and "FILE" in task.slash_usage
    assert registry.manager.info["lmassist-proofread"].hooks == ["register_tasks", "register_templates"]
    cmd = command_for(task)
    assert {"tone", "diff", "output", "as_json", "model"} <= {p.name for p in cmd.params}


def test_proofreading_keeps_markdown_and_never_sends_code(registry, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text(DOC)
    model = ScriptedModel()
    out = run(registry, model, path)
    head, paragraph, rest = out.split("\n\n", 2)
    assert head == "# Meeting notes"
    # a hand-wrapped paragraph is edited as one text, then wrapped again at the author's width
    assert " ".join(paragraph.split()) == "There was a long discussion about the budget, and we decided to spend less on travel."
    assert paragraph.count("\n") >= 1 and max(len(ln) for ln in paragraph.splitlines()) <= 44
    assert rest == (
        "- The team agrees to meet every Monday.\n- Run `make tset` before you push.\n\n"
        "```python\ndef teh_function():  # a typo that is code, not prose\n    return 1\n```\n\n"
        "| col | typo |\n|-----|------|\n| a   | teh  |\n\n> This quote has a mistake.\n"
    )
    sent = "\n".join(model.seen)
    assert "teh_function" not in sent and "| a" not in sent and "```" not in sent
    assert "Their was a long discusion about the budget, and we decided too spend less on travel." in model.seen


def test_diff_output(registry, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text(DOC)
    task = registry.task("proofread")
    result = task.run(ScriptedModel(), {"files": (str(path),), "diff": True, "tone": None, "encoding": None})
    assert result.text.startswith(f"--- {path}\n+++ {path}\n@@")
    assert "-> This quote have a mistake.\n+> This quote has a mistake.\n" in result.text
    assert "teh_function" not in "".join(ln for ln in result.text.splitlines(True) if ln[:1] in "+-")
    assert result.markdown.startswith("```diff\n")
    assert result.data["results"][0]["edited_blocks"] == 4 and result.data["mode"] == "proofread"
    unchanged = task.run(ScriptedModel(lambda t: t), {"files": (str(path),), "diff": True, "tone": None})
    assert unchanged.text == "" and unchanged.markdown == "No changes."


def test_bad_edits_are_refused_and_the_block_kept(tmp_path):
    editor = Proofreader(ScriptedModel())
    original = "Run `make tset` before you push it to the main branch."
    assert editor.accept(original, "Here is the corrected text: Run `make test` before you push it to the main branch.") is None
    assert editor.accept(original, "Run the tests before you push it to the main branch.") is None  # code lost
    assert editor.accept(original, "") is None
    assert editor.accept(original, original + " Also, remember to write good commit messages every day.") is None
    fixed = "Run `make tset` before you push it to the main branch!"
    assert editor.accept(original, f'Sure! Here is the corrected text:\n\n"{fixed}"\n\nI fixed the punctuation.') == fixed
    garbage = Proofreader(ScriptedModel(lambda t: "I cannot help with that request, sorry."))
    edit = garbage.edit_document("Their was a mistake in this sentance.\n")
    assert edit.text == "Their was a mistake in this sentance.\n" and edit.kept_blocks == 1


def test_tone_rewrites_prose_but_not_headings(registry, tmp_path):
    path = tmp_path / "mail.md"
    path.write_text("# hey team\n\nhey, the meeting got moved to 3, dont be late\n")
    model = ScriptedModel(lambda t: "Please note that the meeting has been moved to 3 p.m.; kindly be on time.")
    out = run(registry, model, path, "--tone", "formal")
    assert out == "# hey team\n\nPlease note that the meeting has been moved to 3 p.m.; kindly be on time.\n"
    assert model.seen == ["hey, the meeting got moved to 3, dont be late"]
    with pytest.raises(LMAssistError, match="--tone should be a word or two"):
        run(registry, model, path, "--tone", "'1337; rm -rf'")


def test_long_paragraphs_are_split_and_base_models_get_a_pattern(tmp_path):
    model = ScriptedModel(fix, chat_template=False)
    editor = Proofreader(model)
    assert editor.budget == 100
    sentence = "Their was a discusion about the plan. "
    text = (sentence * 60).strip()
    edit = editor.edit_document(text + "\n")
    assert len(model.seen) > 1 and all(len(s.split()) <= 100 for s in model.seen)
    assert edit.text.count("There was a discussion") == 60


def test_cancel_keeps_the_rest_unchanged(tmp_path):
    token = CancelToken()

    def reply(text: str) -> str:
        token.cancel()
        return fix(text)

    edit = Proofreader(ScriptedModel(reply)).edit_document("Their was one.\n\nTheir was two.\n", cancel=token)
    assert edit.text == "Their was one.\n\nTheir was two.\n"


# -- the real default model, through the real command line ---------------------------------------


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """A dist-info for the plugin on PYTHONPATH: lmassist finds it by its entry point, as if installed."""
    site = tmp_path / "site"
    info = site / "lmassist_proofread-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmassist-proofread\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[lmassist]\nproofread = lmassist_proofread\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN_DIR)])}


def test_cli_proofreads_with_the_default_model(default_gguf, plugin_env, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("The team agree to meet evry monday.\n\n```sh\nmake tset\n```\n")
    proc = run_cli("proofread", str(path), "--json", env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["task"] == "proofread" and data["model"] == "llamacpp:smollm2-135m-instruct"
    result = data["results"][0]
    assert result["source"] == str(path) and result["text"].endswith("\n\n```sh\nmake tset\n```\n")
    changed = [ln for ln in result["diff"].splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    assert all("make tset" not in ln and "```" not in ln for ln in changed)


def test_cli_lists_the_task_and_reports_bad_input(plugin_env, tmp_path):
    helptext = run_cli("--help", env=plugin_env)
    assert "proofread" in helptext.stdout
    tasks = {t["name"]: t for t in json.loads(run_cli("tasks", "--json", env=plugin_env).stdout)}
    assert tasks["proofread"]["plugin"] == "lmassist-proofread" and not tasks["proofread"]["builtin"]
    assert "/proofread FILE" in tasks["proofread"]["slash_usage"]
    missing = run_cli("proofread", str(tmp_path / "nope.md"), env=plugin_env)
    assert missing.returncode == 1 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    bad_tone = run_cli("proofread", "-", "--tone", "!!", input="x\n", env=plugin_env)
    assert bad_tone.returncode == 1 and "--tone" in bad_tone.stderr


def test_the_chat_app_offers_it_as_a_slash_command(registry):
    from lmassist.tui.commands import task_command

    cmd = task_command(registry.task("proofread"))
    assert cmd.name == "proofread" and cmd.takes_path and cmd.usage.startswith("/proofread FILE")


# -- the template it registers -------------------------------------------------------------------


def test_the_plugin_registers_a_template_listed_by_the_cli(plugin_env):
    proc = run_cli("templates", "list", "--json", env=plugin_env)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    found = {t["name"]: t for t in json.loads(proc.stdout)["templates"]}
    formal = found["proofread-formal"]
    assert formal["origin"] == "lmassist-proofread" and formal["path"] is None
    assert "formal" in formal["system"] and formal["options"] == {"temperature": 0.2}
    plain = run_cli("templates", "list", env=plugin_env)
    row = next(line for line in plain.stdout.splitlines() if line.startswith("proofread-formal"))
    assert "plugin lmassist-proofread" in row
    safe = run_cli("templates", "list", "--json", env={**plugin_env, "LMASSIST_LOAD_PLUGINS": ""})
    assert "proofread-formal" not in safe.stdout  # safe mode: no plugin, no plugin template


def test_a_users_template_of_the_same_name_wins_and_removing_it_brings_the_plugins_back(plugin_env):
    added = run_cli("templates", "add", "proofread-formal", "-s", "Be brief.", env=plugin_env)
    assert added.returncode == 0, added.stderr
    assert "takes the place of plugin lmassist-proofread's template" in added.stdout
    mine = json.loads(run_cli("templates", "show", "proofread-formal", "--json", env=plugin_env).stdout)
    assert mine["system"] == "Be brief." and mine["origin"] == "user" and mine["hides"] == "lmassist-proofread"
    listed = run_cli("templates", "list", env=plugin_env).stdout
    assert "user (in place of plugin lmassist-proofread's)" in listed
    removed = run_cli("templates", "remove", "proofread-formal", env=plugin_env)
    assert removed.returncode == 0 and "is used again" in removed.stdout
    back = json.loads(run_cli("templates", "show", "proofread-formal", "--json", env=plugin_env).stdout)
    assert back["origin"] == "lmassist-proofread" and "formal" in back["system"]
    refused = run_cli("templates", "remove", "proofread-formal", env=plugin_env)
    assert refused.returncode == 1 and "comes from plugin lmassist-proofread" in refused.stderr
