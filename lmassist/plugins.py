"""The plugin manager: built-in plugins plus those installed under the ``lmassist`` entry-point group.

A plugin that fails to import, or raises inside a hook, is recorded in :attr:`PluginManager.errors`
and reported; it never stops the rest of lmassist from working. ``LMASSIST_LOAD_PLUGINS`` (a comma
list of distribution names; empty means none) limits which third-party plugins load: a safe mode.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from lmassist import hookspecs

ENTRY_POINT_GROUP = "lmassist"

# Built-in features register through the same hooks as third-party plugins.
BUILTIN_PLUGINS = (
    "lmassist.backends.llamacpp",
    "lmassist.backends.hf",
    "lmassist.backends.inhouse",
    "lmassist.commands.ask",
    "lmassist.commands.chat",
    "lmassist.commands.models",
    "lmassist.commands.info",
    "lmassist.commands.settings",
    "lmassist.commands.history",
    "lmassist.commands.inhouse",
    "lmassist.commands.bench",
    "lmassist.commands.bench_hf",
    "lmassist.commands.bench_tui",
    "lmassist.commands.install",
    "lmassist.tasks.builtin",
)


@dataclass
class PluginInfo:
    name: str
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginError:
    plugin: str
    where: str  # "import" or the hook's name
    message: str

    def __str__(self) -> str:
        where = "failed to load" if self.where == "import" else f"raised in {self.where}"
        return f"plugin {self.plugin} {where}: {self.message}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class PluginManager:
    """pluggy's manager plus the bookkeeping that makes broken plugins harmless and visible."""

    def __init__(self, load_entry_points: bool = True, builtins: tuple[str, ...] = BUILTIN_PLUGINS) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.errors: list[PluginError] = []
        self.info: dict[str, PluginInfo] = {}
        for module_name in builtins:
            try:
                self.register(importlib.import_module(module_name), name=module_name, builtin=True)
            except ModuleNotFoundError as e:
                if e.name != module_name:  # a built-in that is present but broken is a bug to report
                    self._fail(module_name, "import", e)
        if load_entry_points:
            self._load_entry_points()

    def register(self, plugin: Any, name: str | None = None, builtin: bool = False, version: str | None = None) -> None:
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self.pm.register(plugin, name=name)
        hooks = sorted({impl.name for impl in self.pm.get_hookcallers(plugin) or []})
        self.info[name] = PluginInfo(name=name, version=version, builtin=builtin, hooks=hooks)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.info.pop(name, None)

    def _fail(self, plugin: str, where: str, exc: BaseException) -> None:
        err = PluginError(plugin, where, _describe(exc))
        self.errors.append(err)
        info = self.info.setdefault(plugin, PluginInfo(name=plugin))
        info.error = info.error or str(err)

    def _load_entry_points(self) -> None:
        allowed = os.environ.get("LMASSIST_LOAD_PLUGINS")
        allow = None if allowed is None else {n.strip().lower().replace("_", "-") for n in allowed.split(",") if n.strip()}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else ep.name
            if allow is not None and dist.lower().replace("_", "-") not in allow:
                continue
            version = ep.dist.version if ep.dist else None
            try:
                plugin = ep.load()
                self.register(plugin, name=dist, version=version)
            except Exception as e:  # noqa: BLE001 - any failure in a third-party import is reported
                self._fail(dist, "import", e)
                self.info[dist].version = version

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call every implementation of ``hook``, isolating each plugin's failures from the others."""
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as e:  # noqa: BLE001
                self._fail(impl.plugin_name, hook, e)

    def collect(self, hook: str) -> list[tuple[str, Any]]:
        """Call a ``register_*`` hook and return ``(plugin name, registered object)`` pairs."""
        found: list[tuple[str, Any]] = []
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            registered: list[Any] = []
            try:
                impl.function(register=registered.append)
            except Exception as e:  # noqa: BLE001
                self._fail(impl.plugin_name, hook, e)
                continue
            found.extend((impl.plugin_name, obj) for obj in registered)
        return found


_manager: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
    return _manager


def reset_manager(manager: PluginManager | None = None) -> None:
    """Replace (or forget) the process-wide manager; tests use it to start from a clean slate."""
    global _manager
    _manager = manager


Register = Callable[[Any], None]
