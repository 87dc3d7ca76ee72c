"""The plugin manager: built-ins, plugins registered in a fixture, broken plugins, safe mode."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmassist import hookimpl
from lmassist.generation import Backend, Model, ModelInfo, ModelSpec, StreamRequest
from lmassist.plugins import PluginManager
from lmassist.registry import Registry
from lmassist.tasks.base import Param, PluginTask, Task, TaskResult


class EchoModel(Model):
    def __init__(self, spec: ModelSpec) -> None:
        self.info = ModelInfo(name=spec.full_name, backend="echo", context_length=100, chat_template=True)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        text = request.prompt if request.prompt is not None else request.messages[-1].content
        for word in text.split():
            yield word + " "

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class EchoBackend(Backend):
    name = "echo"
    description = "repeats the prompt"

    def models(self):
        return [ModelSpec(backend="echo", name="parrot")]

    def load(self, spec: ModelSpec, **settings) -> Model:
        return EchoModel(spec)


class EchoPlugin:
    @hookimpl
    def register_backends(self, register):
        register(EchoBackend())


class RaisingPlugin:
    @hookimpl
    def register_backends(self, register):
        raise RuntimeError("boom")


@pytest.fixture
def manager() -> PluginManager:
    pm = PluginManager(load_entry_points=False)
    pm.register(EchoPlugin(), name="echo-plugin")
    return pm


def test_builtin_backends_register_through_the_hooks(manager):
    reg = Registry(manager)
    assert {"llamacpp", "echo"} <= set(reg.backends)
    assert "lmassist.backends.llamacpp" in manager.info


def test_plugin_backend_loads_and_generates(manager):
    reg = Registry(manager)
    assert reg.resolve("parrot").full_name == "echo:parrot"
    model = reg.load("echo:parrot")
    assert model.complete("hello there").result() == "hello there "


def test_raising_plugin_is_reported_and_others_keep_working(manager):
    manager.register(RaisingPlugin(), name="raising")
    reg = Registry(manager)
    assert "echo" in reg.backends
    assert any(e.plugin == "raising" and "boom" in e.message for e in manager.errors)
    assert "boom" in manager.info["raising"].error


def test_unknown_model_and_backend_are_one_line_errors(manager):
    from lmassist.generation import LMAssistError

    reg = Registry(manager)
    with pytest.raises(LMAssistError, match="unknown backend 'nope'"):
        reg.resolve("nope:model")
    with pytest.raises(LMAssistError, match="unknown model 'parot'.*echo:parrot|did you mean"):
        reg.resolve("parot")


def _write_dist(site: Path, name: str, module_code: str) -> None:
    """A real installed distribution with an entry point in group 'lmassist', on sys.path."""
    mod = name.replace("-", "_")
    (site / f"{mod}.py").write_text(textwrap.dedent(module_code))
    info = site / f"{mod}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lmassist]\n{mod} = {mod}\n")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("good_plugin", "broken_plugin"):
        sys.modules.pop(name, None)


def test_entry_point_plugins_load_and_broken_import_is_reported(site):
    _write_dist(site, "good-plugin", """
        from lmassist import hookimpl

        @hookimpl
        def register_commands(cli):
            pass
    """)
    _write_dist(site, "broken-plugin", "raise ImportError('missing dependency xyz')\n")
    pm = PluginManager()
    assert pm.info["good-plugin"].version == "1.0"
    assert pm.info["good-plugin"].hooks == ["register_commands"]
    assert "missing dependency xyz" in pm.info["broken-plugin"].error


def test_load_plugins_env_limits_third_party_plugins(site, monkeypatch):
    _write_dist(site, "good-plugin", "x = 1\n")
    monkeypatch.setenv("LMASSIST_LOAD_PLUGINS", "")
    assert "good-plugin" not in PluginManager().info
    monkeypatch.setenv("LMASSIST_LOAD_PLUGINS", "good-plugin")
    assert "good-plugin" in PluginManager().info


class TwinBackend(EchoBackend):
    name = "twin"

    def models(self):
        return [ModelSpec(backend="twin", name="parrot")]


class TwinPlugin:
    @hookimpl
    def register_backends(self, register):
        register(TwinBackend())


def test_a_bare_name_in_two_backends_prefers_the_default_models_backend(manager):
    manager.register(TwinPlugin(), name="twin-plugin")
    reg = Registry(manager)
    reg.settings.values["default_model"] = "twin:something"
    assert reg.resolve("parrot").full_name == "twin:parrot"
    reg.settings.values["default_model"] = "llamacpp:smollm2-135m-instruct"
    from lmassist.generation import LMAssistError

    with pytest.raises(LMAssistError, match="ambiguous"):
        reg.resolve("parrot")
    assert reg.resolve("smollm2-135m-instruct").full_name == "llamacpp:smollm2-135m-instruct"


class BrokenListingBackend(EchoBackend):
    name = "broken"

    def models(self):
        raise NameError("name 'local_ggufs' is not defined")


class BrokenListingPlugin:
    @hookimpl
    def register_backends(self, register):
        register(BrokenListingBackend())


def test_an_unknown_model_names_the_backend_whose_listing_broke(manager):
    """A backend that raises while listing its models loses them; 'unknown model' alone would hide why."""
    from lmassist.generation import LMAssistError

    manager.register(BrokenListingPlugin(), name="broken-plugin")
    reg = Registry(manager)
    with pytest.raises(LMAssistError, match=r"unknown model broken:x \(and plugin broken-plugin raised in models: .*local_ggufs"):
        reg.resolve("broken:x")
    with pytest.raises(LMAssistError, match=r"unknown model 'x'.*\(and plugin broken-plugin raised in models"):
        reg.resolve("x")
    assert reg.resolve("echo:parrot").full_name == "echo:parrot"  # the others keep working


# -- name clashes: built-ins win, and the clash is reported ------------------------------------------


class ShadowBackend(EchoBackend):
    """A backend that takes the built-in llama.cpp backend's name, as the hostile-input trial's did."""

    name = "llamacpp"

    def models(self):
        return [ModelSpec(backend="llamacpp", name="smollm2-135m-instruct", installed=True)]


class ShadowTask:
    name = "summarize"
    summary = "not the real summarize"

    def run_slash(self, model, argline, progress=None, cancel=None) -> str:
        return "SHADOW TASK"


class ShadowPlugin:
    @hookimpl
    def register_backends(self, register):
        register(ShadowBackend())

    @hookimpl
    def register_tasks(self, register):
        register(ShadowTask())

    @hookimpl
    def register_models(self, register):
        register(ModelSpec(backend="llamacpp", name="smollm2-135m-instruct", source="/tmp/evil.gguf", installed=True))


class TryFirstShadowPlugin:
    """``tryfirst`` moves a hook to the front of pluggy's call order; it must not win a name with it."""

    @hookimpl(tryfirst=True)
    def register_backends(self, register):
        register(ShadowBackend())


@pytest.fixture
def shadowed(manager: PluginManager) -> PluginManager:
    manager.register(ShadowPlugin(), name="shadow-plugin")
    return manager


def test_a_plugin_cannot_replace_a_builtin_backend_task_or_model(shadowed):
    from lmassist.backends.llamacpp import LlamaCppBackend
    from lmassist.tasks.summarize import SummarizeTask

    reg = Registry(shadowed)
    assert type(reg.backends["llamacpp"]) is LlamaCppBackend
    assert type(reg.task("summarize")) is SummarizeTask
    spec = reg.resolve("llamacpp:smollm2-135m-instruct")
    assert spec.source != "/tmp/evil.gguf" and spec.source.endswith(".gguf")
    assert [s.source for s in reg.models("llamacpp") if s.name == "smollm2-135m-instruct"] == [spec.source]
    assert reg.resolve("parrot").full_name == "echo:parrot"  # what does not clash still works

    messages = sorted(str(e) for e in shadowed.clashes())
    assert messages == [
        "plugin shadow-plugin tried to replace the built-in backend 'llamacpp'; ignored, the built-in is kept",
        "plugin shadow-plugin tried to replace the built-in model 'llamacpp:smollm2-135m-instruct'; "
        "ignored, the built-in is kept",
        "plugin shadow-plugin tried to replace the built-in task 'summarize'; ignored, the built-in is kept",
    ]
    assert "tried to replace the built-in" in shadowed.info["shadow-plugin"].error  # `lmassist plugins` shows it


def test_tryfirst_does_not_let_a_plugin_take_a_builtin_name(manager):
    from lmassist.backends.llamacpp import LlamaCppBackend

    manager.register(TryFirstShadowPlugin(), name="eager-plugin")
    assert type(Registry(manager).backends["llamacpp"]) is LlamaCppBackend
    assert [e.plugin for e in manager.clashes()] == ["eager-plugin"]


def test_pluggy_calls_last_registered_first_which_is_why_we_order_ourselves(manager):
    """The cause of the shadowing: pluggy's call order is LIFO, so a plugin came before the built-ins."""
    manager.register(ShadowPlugin(), name="shadow-plugin")
    pluggy_order = [i.plugin_name for i in reversed(manager.pm.hook.register_backends.get_hookimpls())]
    assert pluggy_order[0] == "shadow-plugin"  # the order the old code used
    ours = [i.plugin_name for i in manager.ordered("register_backends")]
    assert ours[:3] == ["lmassist.backends.llamacpp", "lmassist.backends.hf", "lmassist.backends.inhouse"]
    assert ours[-2:] == ["echo-plugin", "shadow-plugin"]  # plugins after, in registration order


def test_between_plugins_the_first_registered_keeps_a_name(manager):
    class LateEchoBackend(EchoBackend):
        pass

    class LateEcho:
        @hookimpl
        def register_backends(self, register):
            register(LateEchoBackend())

    manager.register(LateEcho(), name="late-plugin")
    reg = Registry(manager)
    assert type(reg.backends["echo"]) is EchoBackend
    assert [str(e) for e in manager.clashes()] == [
        "plugin late-plugin registered the backend 'echo', which plugin echo-plugin already has; ignored"
    ]


def test_a_clash_is_reported_once_however_many_registries_are_built(shadowed):
    for _ in range(3):
        Registry(shadowed)
    assert len(shadowed.clashes()) == 3  # backend, task, model: each once
    assert len(shadowed.errors) == 3


class CommandShadowPlugin:
    @hookimpl
    def register_commands(self, cli):
        import click

        @click.command("ask")
        def fake_ask():
            click.echo("SHADOW COMMAND")

        cli.add_command(fake_ask)
        del cli.commands["models"]
        cli.add_command(click.Command("hello", callback=lambda: click.echo("hello")))  # a new name is fine
        bench = cli.commands.get("bench")
        bench.add_command(click.Command("ask", callback=lambda: click.echo("SHADOW BENCH")))


def test_a_plugin_cannot_replace_or_remove_a_builtin_command(manager):
    from click.testing import CliRunner

    from lmassist import plugins
    from lmassist.cli import LMAssistGroup

    manager.register(CommandShadowPlugin(), name="command-plugin")
    plugins.reset_manager(manager)  # the built-in task plugin reads the process-wide manager
    group = LMAssistGroup("lmassist")
    group.add_command(LMAssistGroup("bench"))
    manager.call("register_commands", cli=group)
    from lmassist.commands.ask import ask

    assert group.commands["ask"] is ask
    assert "models" in group.commands and "hello" in group.commands
    assert group.commands["bench"].commands["ask"].callback.__module__.startswith("lmassist.")
    assert "SHADOW" not in CliRunner().invoke(group, ["ask", "--help"]).output
    assert sorted(str(e) for e in manager.clashes()) == [
        "plugin command-plugin tried to replace the built-in command 'ask'; ignored, the built-in is kept",
        "plugin command-plugin tried to replace the built-in command 'bench ask'; ignored, the built-in is kept",
        "plugin command-plugin tried to replace the built-in command 'models'; ignored, the built-in is kept",
    ]


class TaskNamedLikeACommand(ShadowTask):
    name = "models"


class TaskCommandPlugin:
    @hookimpl
    def register_tasks(self, register):
        register(TaskNamedLikeACommand())


def test_a_task_cannot_take_a_builtin_commands_name(manager):
    from lmassist import plugins
    from lmassist.cli import LMAssistGroup
    from lmassist.commands.models import models

    manager.register(TaskCommandPlugin(), name="task-plugin")
    plugins.reset_manager(manager)
    group = LMAssistGroup("lmassist")
    manager.call("register_commands", cli=group)
    assert group.commands["models"] is models
    assert [str(e) for e in manager.clashes()] == [
        "plugin task-plugin tried to replace the built-in command 'models'; ignored, the built-in is kept"
    ]


def test_a_hook_that_raises_in_register_tasks_is_reported_once_per_command(tmp_path):
    """Each command builds the task list twice (the CLI's task commands, then the registry): one warning."""
    import json

    from conftest import run_cli

    site = tmp_path / "site"
    site.mkdir()
    _write_dist(site, "tasks-broken", """
        from lmassist import hookimpl

        @hookimpl
        def register_tasks(register):
            raise RuntimeError('no tasks today')
    """)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    for args in (["backends", "--json"], ["models", "list", "--json"], ["tasks", "--json"], ["plugins", "--json"]):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout)
        warnings = [ln for ln in proc.stderr.splitlines() if "no tasks today" in ln]
        assert warnings == ["Warning: plugin tasks-broken raised in register_tasks: RuntimeError: no tasks today"], (
            args, proc.stderr)


class ExtraModelPlugin:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec(backend="llamacpp", name="my-extra", source="/tmp/my-extra.gguf"))


def test_a_plugin_may_add_a_model_to_a_builtin_backend(manager):
    manager.register(ExtraModelPlugin(), name="extra-plugin")
    reg = Registry(manager)
    assert reg.resolve("llamacpp:my-extra").source == "/tmp/my-extra.gguf"
    assert reg.resolve("my-extra").full_name == "llamacpp:my-extra"
    assert not manager.errors


# -- the task contract, checked once when a plugin registers a task -----------------------------------


class NamelessTask:
    summary = "no name"

    def run_slash(self, model, argline, progress=None, cancel=None) -> str:
        return argline


class MuteTask:
    name = "mute"
    summary = "a name and nothing to run"


class BadParamTask(Task):
    name = "bad-param"
    params = ("--words",)  # a flag spelled as a string, not a Param


class DuckTask:
    """A task that does not subclass Task: its declaration and run(), as docs/plugins.md allows."""

    name = "duck"
    summary = "Repeat the words."
    params = (Param("words", "argument", multiple=True),)
    needs_model = False

    def run(self, model, values, progress=None, cancel=None):
        return TaskResult(text=" ".join(values["words"]))


class ContractPlugin:
    @hookimpl
    def register_tasks(self, register):
        for task in (NamelessTask(), MuteTask(), BadParamTask(), DuckTask()):
            register(task)


def test_a_task_is_checked_once_at_registration_and_a_bad_one_is_reported_and_skipped(manager):
    manager.register(ContractPlugin(), name="contract-plugin")
    reg = Registry(manager)
    assert {"summarize", "translate", "sentiment", "qa", "duck"} == set(reg.tasks)
    assert all(isinstance(task, Task) for task in reg.tasks.values())
    assert [(e.plugin, e.where) for e in manager.errors] == [("contract-plugin", "register_tasks")] * 3
    nameless, mute, bad_param = (str(e) for e in manager.errors)
    assert "not a named task: a NamelessTask object with no name" in nameless
    assert "'mute' offers no way to run" in mute
    assert "'bad-param' declares a parameter that is not a lmassist.tasks.base.Param: '--words'" in bad_param
    Registry(manager)
    assert len(manager.errors) == 3  # reported once, however many registries are built


def test_a_task_that_is_not_a_task_subclass_reads_as_one(manager):
    manager.register(ContractPlugin(), name="contract-plugin")
    reg = Registry(manager)
    duck = reg.task("duck")
    assert isinstance(duck, PluginTask) and duck.wrapped.__class__ is DuckTask
    assert reg.task_plugin("duck") == "contract-plugin" and reg.task_plugin("qa") == "lmassist.tasks.builtin"
    assert (duck.summary, duck.slash_usage, duck.needs_model, duck.json_schema) == (
        "Repeat the words.", "/duck WORDS...", False, None)
    assert duck.run_slash(None, "hello there") == "hello there"  # parsed with the declaration, then run()
    assert duck.command() is None  # the command line builds one from the declaration


def test_the_task_commands_are_the_registrys_tasks(manager):
    from lmassist import plugins
    from lmassist.cli import LMAssistGroup

    manager.register(ContractPlugin(), name="contract-plugin")
    plugins.reset_manager(manager)
    group = LMAssistGroup("lmassist")
    manager.call("register_commands", cli=group)
    tasks = {name: cmd.lmassist_task for name, cmd in group.commands.items() if hasattr(cmd, "lmassist_task")}
    reg = Registry(manager)
    assert list(tasks) == list(reg.tasks)
    assert [type(t) for t in tasks.values()] == [type(t) for t in reg.tasks.values()]
    assert "tasks" in group.commands
    assert len(manager.errors) == 3  # the bad tasks, once: building the commands checked the same contract
