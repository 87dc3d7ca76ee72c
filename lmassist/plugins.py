"""The plugin manager: built-in plugins plus those installed under the ``lmassist`` entry-point group.

A plugin that fails to import, or raises inside a hook, is recorded in :attr:`PluginManager.errors`
and reported; it never stops the rest of lmassist from working. ``LMASSIST_LOAD_PLUGINS`` (a comma
list of distribution names; empty means none) limits which third-party plugins load: a safe mode.

Names are first come, first served, and built-ins always come first: a plugin may add backends,
models, tasks, templates and commands, but one that registers a name lmassist (or an earlier plugin) already
has is refused, and the clash is reported where plugin errors are. Installing a plugin must never
silently change what ``ask -m llamacpp:…`` or ``lmassist ask`` runs. pluggy *calls* hooks last
registered first (LIFO; ``tryfirst``/``trylast`` move an implementation to either end), which is why
:meth:`PluginManager.ordered` does not use pluggy's order for registration hooks: it sorts the
implementations itself, built-ins first, each group in registration order, ignoring
``tryfirst``/``trylast`` (a plugin cannot mark its way ahead of a built-in).
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
from lmassist.errors import describe

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
    "lmassist.commands.docs",
    "lmassist.commands.templates",
    "lmassist.commands.inhouse",
    "lmassist.commands.install",
    "lmassist.commands.doctor",
    "lmassist.tasks.builtin",
    "lmassist.commands.tasks",
    "lmassist.bench",
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
    clash: bool = False  # the plugin registered a name that was taken (message says which); ignored

    def __str__(self) -> str:
        if self.clash:
            return f"plugin {self.plugin} {self.message}"
        where = "failed to load" if self.where == "import" else f"raised in {self.where}"
        return f"plugin {self.plugin} {where}: {self.message}"


class PluginManager:
    """pluggy's manager plus the bookkeeping that makes broken plugins harmless and visible."""

    def __init__(self, load_entry_points: bool = True, builtins: tuple[str, ...] = BUILTIN_PLUGINS) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.errors: list[PluginError] = []
        self.info: dict[str, PluginInfo] = {}
        self._order: dict[str, int] = {}  # plugin name -> registration number
        # Which plugin added each command (a path of names: ("bench", "ask")), so that a later
        # plugin cannot replace it. Commands that exist before any hook runs belong to lmassist.
        self.command_owner: dict[tuple[str, ...], str] = {}
        for module_name in builtins:
            try:
                self.register(importlib.import_module(module_name), name=module_name, builtin=True)
            except ModuleNotFoundError as e:
                if e.name != module_name:  # a built-in that is present but broken is a bug to report
                    self.report(module_name, "import", e)
        if load_entry_points:
            self._load_entry_points()

    def register(self, plugin: Any, name: str | None = None, builtin: bool = False, version: str | None = None) -> None:
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self.pm.register(plugin, name=name)
        self._order[name] = len(self._order)
        hooks = sorted({impl.name for impl in self.pm.get_hookcallers(plugin) or []})
        self.info[name] = PluginInfo(name=name, version=version, builtin=builtin, hooks=hooks)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.info.pop(name, None)
        self._order.pop(name, None)

    def is_builtin(self, plugin: str) -> bool:
        """Whether ``plugin`` is part of lmassist ("lmassist" stands for what exists before any hook)."""
        info = self.info.get(plugin)
        return plugin == "lmassist" or (info is not None and info.builtin)

    def _record(self, err: PluginError) -> None:
        """Keep one copy of each problem: hooks run again for each registry a command builds."""
        if err in self.errors:
            return
        self.errors.append(err)
        info = self.info.setdefault(err.plugin, PluginInfo(name=err.plugin))
        info.error = info.error or str(err)

    def report(self, plugin: str, where: str, exc: BaseException) -> None:
        """Record that ``plugin`` failed in ``where`` (``"import"``, a hook's name, or what a caller
        was doing with what it registered): shown by ``lmassist plugins`` and once as a warning."""
        self._record(PluginError(plugin, where, describe(exc)))

    def clash(self, plugin: str, where: str, what: str, name: str, owner: str) -> None:
        """Report that ``plugin`` registered ``what`` ``name``, which ``owner`` had first (it is ignored)."""
        if self.is_builtin(owner):
            message = f"tried to replace the built-in {what} {name!r}; ignored, the built-in is kept"
        else:
            message = f"registered the {what} {name!r}, which plugin {owner} already has; ignored"
        self._record(PluginError(plugin, where, message, clash=True))

    def clashes(self) -> list[PluginError]:
        return [e for e in self.errors if e.clash]

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
                self.report(dist, "import", e)
                self.info[dist].version = version

    def ordered(self, hook: str) -> list[Any]:
        """``hook``'s implementations, built-ins first, then plugins, each in registration order.

        Not pluggy's call order, which is last registered first: with it, the last plugin
        installed would take any name it liked, ``llamacpp`` included.
        """
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return sorted(impls, key=lambda i: (not self.is_builtin(i.plugin_name), self._order.get(i.plugin_name, 0)))

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call every implementation of ``hook``, isolating each plugin's failures from the others.

        For ``register_commands`` a command another plugin (or lmassist) added first is put back
        when a later plugin replaces or removes it, and the clash is reported.
        """
        group = kwargs.get("cli") if hook == "register_commands" else None
        if group is not None:
            for path in _command_tree(group):
                self.command_owner.setdefault(path, "lmassist")
        for impl in self.ordered(hook):
            before = _command_tree(group) if group is not None else {}
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as e:  # noqa: BLE001
                self.report(impl.plugin_name, hook, e)
            if group is not None:
                self._keep_commands(impl.plugin_name, group, before)

    def _keep_commands(self, plugin: str, group: Any, before: dict[tuple[str, ...], tuple[Any, Any]]) -> None:
        for path, (parent, command) in before.items():
            if parent.commands.get(path[-1]) is command:
                continue
            owner = self.command_owner.get(path, "lmassist")
            if owner == plugin or (self.is_builtin(plugin) and self.is_builtin(owner)):
                continue  # a plugin may replace its own command, and lmassist its own
            parent.commands[path[-1]] = command
            self.clash(plugin, "register_commands", "command", " ".join(path), owner)
        for path in _command_tree(group):
            self.command_owner.setdefault(path, plugin)

    def collect(self, hook: str) -> list[tuple[str, Any]]:
        """Call a ``register_*`` hook and return ``(plugin name, registered object)`` pairs.

        Built-ins come first, so a caller that keeps the first object of each name keeps the
        built-in one (and reports the rest with :meth:`clash`).
        """
        found: list[tuple[str, Any]] = []
        for impl in self.ordered(hook):
            registered: list[Any] = []
            try:
                impl.function(register=registered.append)
            except Exception as e:  # noqa: BLE001
                self.report(impl.plugin_name, hook, e)
                continue
            found.extend((impl.plugin_name, obj) for obj in registered)
        return found


def _command_tree(group: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], tuple[Any, Any]]:
    """``{path: (parent group, command)}`` for every command under a click group, nested groups too."""
    tree: dict[tuple[str, ...], tuple[Any, Any]] = {}
    commands = getattr(group, "commands", None)
    if not isinstance(commands, dict):
        return tree
    for name, command in list(commands.items()):
        tree[(*prefix, name)] = (group, command)
        tree.update(_command_tree(command, (*prefix, name)))
    return tree


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
