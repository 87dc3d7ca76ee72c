"""The plugin manager: built-ins, plugins registered in a fixture, broken plugins, safe mode."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmassist import hookimpl
from lmassist.generation import Backend, Model, ModelInfo, ModelSpec, StreamRequest
from lmassist.plugins import PluginManager
from lmassist.registry import Registry


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
