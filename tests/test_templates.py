"""Named prompt templates: the real CLI on real files in a temporary home, plugins' templates and
their clashes, the merge with explicit flags, and a template's options reaching the real model."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, plugin_env, run_cli

from lmassist import hookimpl
from lmassist.errors import LMAssistError
from lmassist.generation import Message, parse_option_pairs
from lmassist.plugins import PluginManager
from lmassist.templates import Template, apply_template, catalog, get_template, list_templates, templates_dir


def tdir(home: Path) -> Path:
    return home / "config" / "templates"


def add(*args: str, **kw) -> None:
    proc = run_cli("templates", "add", *args, **kw)
    assert proc.returncode == 0, proc.stderr


# -- the command line ---------------------------------------------------------------------------------


def test_add_show_list_path_and_remove(lmassist_home, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    proc = run_cli("templates", "add", "reviewer", "-s", "You review code tersely.", "-O", "temperature", "0.2",
                   "-O", "stop", "\\n\\n", "-m", "smollm2-135m-instruct", "-f", str(notes),
                   "--description", "terse code review")
    assert proc.returncode == 0, proc.stderr
    assert "Saved template reviewer" in proc.stdout and "ask -t reviewer" in proc.stdout
    path = tdir(lmassist_home) / "reviewer.json"
    assert json.loads(path.read_text()) == {
        "description": "terse code review", "system": "You review code tersely.",
        "model": "llamacpp:smollm2-135m-instruct", "options": {"temperature": 0.2, "stop": ["\n\n"]},
        "attachments": [str(notes)],
    }
    assert [p.name for p in path.parent.iterdir()] == ["reviewer.json"]  # no temporary file left behind
    shown = run_cli("templates", "show", "reviewer").stdout
    assert "from:         user" in shown and "temperature=0.2" in shown and "  You review code tersely." in shown
    listed = json.loads(run_cli("templates", "list", "--json").stdout)
    assert [t["name"] for t in listed["templates"]] == ["reviewer"] and listed["broken"] == {}
    assert listed["templates"][0]["path"] == str(path)
    assert run_cli("templates", "path").stdout.strip() == str(tdir(lmassist_home))
    removed = run_cli("templates", "remove", "reviewer")
    assert removed.returncode == 0 and not path.exists()
    assert "No templates yet" in run_cli("templates", "list").stdout


def test_a_system_prompt_from_stdin_and_replace_only_with_force(lmassist_home):
    add("haiku", "-s", "-", input="Answer in a haiku.\nAlways.\n")
    assert get_template("haiku").system == "Answer in a haiku.\nAlways."
    again = run_cli("templates", "add", "haiku", "-s", "Two haikus.")
    assert_one_line_error(again, "template 'haiku' exists", "--force")
    assert get_template("haiku").system == "Answer in a haiku.\nAlways."  # nothing lost
    add("haiku", "-s", "Two haikus.", "--force")
    assert get_template("haiku").system == "Two haikus."


@pytest.mark.parametrize("args, needles", [
    (("../up", "-s", "x"), ("invalid template name '../up'",)),
    (("a/b", "-s", "x"), ("invalid template name",)),
    (("t", "-O", "temprature", "1"), ("unknown option 'temprature'", "temperature")),
    (("t", "-O", "temperature", "hot"), ("option 'temperature' needs a number",)),
    (("t", "-O", "top_p", "7"), ("top_p must be in (0, 1]",)),
    (("t", "-o", "temperature", "1"), ("-O/--option KEY VALUE",)),
    (("t", "-m", "smolm2-135m-instruct"), ("unknown model", "did you mean")),
    (("t", "-f", "/no/such/file.md"), ("no such file, folder or matching glob",)),
    (("t", "-f", "-"), ("cannot be saved in a template",)),
    (("t",), ("the template sets nothing",)),
    (("t", "-s", "-"), ("nothing was piped",)),
])
def test_bad_input_to_add_is_one_line_and_saves_nothing(lmassist_home, args, needles):
    proc = run_cli("templates", "add", *args)
    if "-O/--option KEY VALUE" in needles:  # click's usage error: its own two lines, still no traceback
        assert proc.returncode == 2 and needles[0] in proc.stderr and "Traceback" not in proc.stderr
    else:
        assert_one_line_error(proc, *needles)
    assert not tdir(lmassist_home).exists() or not list(tdir(lmassist_home).iterdir())


def test_unknown_names_suggest_close_ones(lmassist_home):
    add("reviewer", "-s", "x")
    for cmd in ("show", "edit", "remove"):
        assert_one_line_error(run_cli("templates", cmd, "reveiwer"), "unknown template 'reveiwer'", "did you mean reviewer")
    far = run_cli("templates", "show", "zzz")
    assert_one_line_error(far, "known templates: reviewer", "lmassist templates add zzz")
    with pytest.raises(LMAssistError, match="did you mean reviewer"):
        get_template("reviewr")


def test_a_broken_file_is_named_with_its_field_and_the_others_still_work(lmassist_home):
    add("good", "-s", "fine")
    folder = tdir(lmassist_home)
    (folder / "typo.json").write_text('{"sytem": "x"}\n')
    (folder / "hot.json").write_text('{"system": "x", "options": {"temperature": 500}}\n')
    (folder / "torn.json").write_text('{"system": "x", "opt')
    (folder / "two words.json").write_text('{"system": "x"}')
    os.mkfifo(folder / "pipe.json")  # would block a plain read forever
    listed = run_cli("templates", "list", timeout=30)
    assert listed.returncode == 0 and "good" in listed.stdout
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 5 and all(w.startswith("Warning: template file ") for w in warnings)
    assert any("pipe.json: not a regular file" in w for w in warnings)
    assert any("invalid template name 'two words'" in w and "rename the file" in w for w in warnings)
    assert any(f"{folder / 'typo.json'}: unknown field 'sytem'; did you mean 'system'?" in w for w in warnings)
    assert any("hot.json: field 'options': temperature must be in 0..100" in w for w in warnings)
    assert any("torn.json: not valid JSON" in w and "templates edit torn" in w for w in warnings)
    assert_one_line_error(run_cli("templates", "show", "hot"), str(folder / "hot.json"), "field 'options'")
    assert [t.name for t in list_templates()] == ["good"]
    assert set(catalog().broken) == {"typo", "hot", "torn", "two words", "pipe"}
    removed = run_cli("templates", "remove", "torn")  # a broken file can still be removed
    assert removed.returncode == 0 and not (folder / "torn.json").exists()


EDITOR = """\
import os, sys
path = sys.argv[1]
text = os.environ["NEW_TEXT"]
if text != "SAME":
    open(path, "w").write(text)
sys.exit(int(os.environ.get("EDITOR_STATUS", "0")))
"""


@pytest.fixture
def editor(tmp_path):
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)

    def env(new_text: str, status: int = 0) -> dict[str, str]:
        return {"EDITOR": f"{sys.executable} {script}", "VISUAL": "", "NEW_TEXT": new_text,
                "EDITOR_STATUS": str(status)}
    return env


def test_edit_saves_a_good_edit_and_refuses_a_broken_one_keeping_both(lmassist_home, editor):
    add("tone", "-s", "Be kind.")
    path = tdir(lmassist_home) / "tone.json"
    before = path.read_text()
    good = '{"system": "Be very kind.", "options": {"temperature": 0.3}}\n'
    proc = run_cli("templates", "edit", "tone", env=editor(good))
    assert proc.returncode == 0 and path.read_text() == good and get_template("tone").options == {"temperature": 0.3}
    bad = '{"system": "Be kind.", "options": {"temperature": "warm"}}\n'
    refused = run_cli("templates", "edit", "tone", env=editor(bad))
    line = assert_one_line_error(refused, str(path), "field 'options'", "the previous version is kept")
    assert path.read_text() == good
    draft = Path(line.rsplit("your edit is in ", 1)[1].rstrip(")"))
    assert draft.read_text() == bad and draft.name.startswith(".")  # what was typed is not lost
    assert [t.name for t in list_templates()] == ["tone"]  # the draft is not a template
    same = run_cli("templates", "edit", "tone", env=editor("SAME"))
    assert same.returncode == 0 and "No change" in same.stdout
    failed = run_cli("templates", "edit", "tone", env=editor("SAME", status=3))
    assert_one_line_error(failed, "Editing failed", "$EDITOR")
    assert path.read_text() == good != before


def test_edit_fixes_a_broken_file(lmassist_home, editor):
    path = tdir(lmassist_home) / "torn.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"system": "x"')
    proc = run_cli("templates", "edit", "torn", env=editor('{"system": "x"}'))
    assert proc.returncode == 0, proc.stderr
    assert get_template("torn").system == "x"


# -- plugins -----------------------------------------------------------------------------------------


class Registers:
    def __init__(self, *templates) -> None:
        self.templates = templates

    @hookimpl
    def register_templates(self, register):
        for t in self.templates:
            register(t)


def manager_with(*plugins: tuple[str, object], builtin: object | None = None) -> PluginManager:
    pm = PluginManager(load_entry_points=False)
    if builtin is not None:
        pm.register(builtin, name="lmassist.templates.builtin", builtin=True)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


def test_a_plugin_never_takes_a_name_a_builtin_or_earlier_plugin_has():
    builtin = Registers(Template("explain", system="Explain simply."))
    first = Registers(Template("haiku", system="Answer in a haiku."))
    second = Registers(Template("explain", system="MINE"), {"name": "haiku", "system": "MINE"},
                       {"name": "limerick", "system": "Answer in a limerick."})
    pm = manager_with(("plugin-a", first), ("plugin-b", second), builtin=builtin)
    found = catalog(pm)
    assert found.templates["explain"].system == "Explain simply."
    assert found.templates["haiku"].origin == "plugin-a"
    assert found.templates["limerick"].origin == "plugin-b"  # the rest of the plugin works
    clashes = [str(e) for e in pm.clashes()]
    assert clashes == [
        "plugin plugin-b tried to replace the built-in template 'explain'; ignored, the built-in is kept",
        "plugin plugin-b registered the template 'haiku', which plugin plugin-a already has; ignored",
    ]


def test_a_bad_plugin_template_is_reported_and_skipped(lmassist_home):
    class Bad:
        @hookimpl
        def register_templates(self, register):
            register({"name": "hot", "system": "x", "options": {"temperature": -1}})
            register({"name": "../evil", "system": "x"})
            register("not a template")
            register(Template("fine", system="ok"))

    class Raises:
        @hookimpl
        def register_templates(self, register):
            raise RuntimeError("boom")

    pm = manager_with(("bad", Bad()), ("raises", Raises()))
    assert [t.name for t in list_templates(pm)] == ["fine"]
    errors = [str(e) for e in pm.errors]
    assert any("template 'hot': field 'options': temperature must be in 0..100" in e for e in errors)
    assert any("invalid template name '../evil'" in e for e in errors)
    assert any("not a template" in e for e in errors)
    assert "plugin raises raised in register_templates: RuntimeError: boom" in errors


def test_cli_warns_once_about_a_plugins_bad_template_and_lists_the_rest(tmp_path):
    code = (
        "from lmassist import hookimpl\n"
        "@hookimpl\n"
        "def register_templates(register):\n"
        "    register({'name': 'ok-one', 'system': 'fine'})\n"
        "    register({'name': 'bad-one', 'sytem': 'typo'})\n"
    )
    env = plugin_env(tmp_path / "site", "lmassist-tplbad", code)
    proc = run_cli("templates", "list", env=env)
    assert proc.returncode == 0 and "ok-one" in proc.stdout and "bad-one" not in proc.stdout
    assert proc.stderr.splitlines() == [
        "Warning: plugin lmassist-tplbad raised in register_templates: template 'bad-one': unknown field "
        "'sytem'; did you mean 'system'?"
    ]
    plugins = run_cli("plugins", env=env)
    assert "lmassist-tplbad" in plugins.stdout and "register_templates" in plugins.stdout


# -- explicit flags win: the one merge ask, chat and the app use -------------------------------------


def test_explicit_flags_win_field_by_field(lmassist_home, tmp_path):
    t = Template("t", system="Template system.", model="llamacpp:smollm2-135m-instruct",
                 options={"temperature": 0.2, "max_new_tokens": 50, "stop": ("END",)},
                 attachments=(str(tmp_path / "a.md"),))
    plain = t.apply()
    assert (plain.system, plain.model, plain.template) == ("Template system.", "llamacpp:smollm2-135m-instruct", "t")
    typed = t.apply(system="Mine.", model="hf:gpt2", options=parse_option_pairs([("temperature", "0.9"), ("stop", "X")]),
                    attachments=[str(tmp_path / "b.md"), str(tmp_path / "a.md")])
    assert typed.system == "Mine." and typed.model == "hf:gpt2"
    assert typed.options == {"temperature": 0.9, "max_new_tokens": 50, "stop": ("X",)}
    assert typed.attachments == (str(tmp_path / "a.md"), str(tmp_path / "b.md"))
    assert t.options == {"temperature": 0.2, "max_new_tokens": 50, "stop": ("END",)}  # the template is unchanged
    none = apply_template(None, system="s", options={"seed": 1})
    assert (none.system, none.model, none.options, none.template) == ("s", None, {"seed": 1}, None)
    with pytest.raises(LMAssistError, match="unknown template 'nope'"):
        apply_template("nope")


def test_a_templates_options_and_system_reach_the_real_model(lmassist_home, smollm):
    add("short", "-s", "You answer in French.", "-O", "max_new_tokens", "3", "-O", "temperature", "0")
    applied = apply_template("short")
    opts = applied.generation_options(smollm.info.default_options)
    assert opts.max_new_tokens == 3 and opts.temperature == 0
    gen = smollm.chat([Message("system", applied.system), Message("user", "Say hello.")], opts)
    gen.result()
    assert gen.stats.generated_tokens <= 3 and gen.stats.stop_reason in ("length", "eos")
    longer = apply_template("short", options=parse_option_pairs([("max_new_tokens", "12")]))
    gen = smollm.chat([Message("user", "Count from one to twenty.")], longer.generation_options(smollm.info.default_options))
    gen.result()
    assert 3 < gen.stats.generated_tokens <= 12  # the explicit -O won


def test_templates_dir_follows_the_config_folder(lmassist_home, monkeypatch, tmp_path):
    assert templates_dir() == tdir(lmassist_home)
    monkeypatch.setenv("LMASSIST_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert templates_dir() == tmp_path / "elsewhere" / "templates"
