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
    # a hand-wrapped paragraph is edited as one text, and its words laid back over the author's lines
    assert paragraph == "There was a long discussion about the budget,\nand we decided to spend less on travel."
    assert rest == (
        "- The team agrees to meet every Monday.\n- Run `make tset` before you push.\n\n"
        "```python\ndef teh_function():  # a typo that is code, not prose\n    return 1\n```\n\n"
        "| col | typo |\n|-----|------|\n| a   | teh  |\n\n> This quote has a mistake.\n"
    )
    sent = "\n".join(model.seen)
    assert "teh_function" not in sent and "|" not in sent and "```" not in sent
    # a table cell's words are proofread, its pipes never sent; "teh" -> "the" alone is too unlike
    # its original for the safety checks (a one-word cell gives no context), so the table is kept
    assert "teh" in model.seen
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


def shout(text: str) -> str:
    """An edit nobody can miss, which the safety checks accept (a proofread compares case-blind)."""
    return text.upper()


def test_list_items_keep_their_markers_and_continuation_indent():
    model = ScriptedModel(shout)
    doc = "- a first item that runs\n  onto a second line\n- second item\n\n10. an ordered item\n    that wraps too\n"
    edit = Proofreader(model).edit_document(doc)
    assert edit.text == ("- A FIRST ITEM THAT RUNS\n  ONTO A SECOND LINE\n- SECOND ITEM\n\n"
                         "10. AN ORDERED ITEM\n    THAT WRAPS TOO\n")
    assert model.seen == ["a first item that runs onto a second line", "second item", "an ordered item that wraps too"]
    assert edit.edited_blocks == 3 and edit.kept_blocks == 0


def test_a_setext_heading_keeps_its_underline_and_is_left_alone_for_a_tone():
    doc = "Release notes\n=============\n\nWhat changed\n---\n\nthe app starts faster now\n"
    edit = Proofreader(ScriptedModel(shout)).edit_document(doc)
    assert edit.text == "RELEASE NOTES\n=============\n\nWHAT CHANGED\n---\n\nTHE APP STARTS FASTER NOW\n"
    model = ScriptedModel(lambda t: "The application now starts considerably faster.")
    toned = Proofreader(model, "formal").edit_document(doc)
    assert toned.text == doc.replace("the app starts faster now", "The application now starts considerably faster.")
    assert model.seen == ["the app starts faster now"]


def test_indented_and_fenced_code_are_never_sent_or_changed():
    doc = ("Call it like this:\n\n    result = teh_function(x)\n    print(result)\n\n"
           "~~~text\nthese words are in a fence\n~~~\n\n```\nand these too\n```\n\n"
           "> quoted words\n>\n>     quoted code\n")
    model = ScriptedModel(shout)
    edit = Proofreader(model).edit_document(doc)
    assert edit.text == doc.replace("Call it like this:", "CALL IT LIKE THIS:").replace("> quoted words", "> QUOTED WORDS")
    assert model.seen == ["Call it like this:", "quoted words"]


def test_a_table_keeps_its_pipes_alignment_row_and_padding():
    doc = "| step | what it does |\n|:-----|-------------:|\n| 1    | lists files \\| folders |\n"
    model = ScriptedModel(shout)
    edit = Proofreader(model).edit_document(doc)
    assert edit.text == "| STEP | WHAT IT DOES |\n|:-----|-------------:|\n| 1    | LISTS FILES \\| FOLDERS |\n"
    assert model.seen == ["step", "what it does", "lists files \\| folders"]  # "1" has no words to edit
    assert edit.edited_blocks == 1


def test_one_rejected_run_keeps_the_whole_block_and_stops_asking():
    model = ScriptedModel(lambda t: "I cannot help with that." if t == "b" else t.upper())
    edit = Proofreader(model).edit_document("| a | b | c |\n|---|---|---|\n\nfine words\n")
    assert edit.text == "| a | b | c |\n|---|---|---|\n\nFINE WORDS\n"
    assert edit.kept_blocks == 1 and edit.edited_blocks == 1
    assert model.seen == ["a", "b", "fine words"]  # nothing more asked of a block already refused


def test_unchanged_words_keep_the_authors_spacing_and_hard_breaks():
    doc = "Two spaces.  After a stop,\na hard break  \nand a   gap.\n"
    edit = Proofreader(ScriptedModel(lambda t: " ".join(t.split()))).edit_document(doc)
    assert edit.text == doc and edit.edited_blocks == 0 and edit.kept_blocks == 0


def test_progress_counts_editable_blocks_only():
    seen: list[tuple[int, int]] = []
    doc = "# Title\n\nsome words\n\n```\ncode\n```\n\n| x |\n|---|\n\n- item\n"
    Proofreader(ScriptedModel(shout)).edit_document(doc, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    toned: list[tuple[int, int]] = []
    Proofreader(ScriptedModel(shout), "formal").edit_document(doc, progress=lambda d, t: toned.append((d, t)))
    assert toned == [(1, 3), (2, 3), (3, 3)]  # the heading is not edited for a tone


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


STRUCTURE = """\
Release notes
=============

- The team agree to meet evry monday,
  and to write there notes before.

Run this befor you push:

    make tset --verbose

```sh
make tset
```

| step | what hapens |
|------|-------------|
| one  | we builds it |
"""


def test_cli_keeps_the_structure_whatever_the_default_model_writes(default_gguf, plugin_env, tmp_path):
    from lmassist.docindex.blocks import markdown_blocks

    path = tmp_path / "notes.md"
    path.write_text(STRUCTURE)
    proc = run_cli("proofread", str(path), "--json", env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    text = json.loads(proc.stdout)["results"][0]["text"]
    assert text != STRUCTURE  # the model did edit (the list item's typos), so markup went back around new words
    before, after = markdown_blocks(STRUCTURE, keep_blank=True), markdown_blocks(text, keep_blank=True)
    assert [b.kind for b in after] == [b.kind for b in before]
    for old, new in zip(before, after, strict=True):
        lines, new_lines = old.text.splitlines(), new.text.splitlines()
        if old.kind in ("code", "blank"):
            assert new.text == old.text
        elif old.kind == "heading":
            assert new_lines[-1] == "=============" and len(new_lines) == 2
        elif old.kind == "list_item":
            assert new_lines[0].startswith("- ") and len(new_lines) <= 2
            assert all(ln.startswith("  ") and not ln.startswith("   ") for ln in new_lines[1:])
        elif old.kind == "table":
            assert new_lines[1] == lines[1] and [ln.count("|") for ln in new_lines] == [3, 3, 3]


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
