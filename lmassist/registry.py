"""Backends and models by name: ``llamacpp:smollm2-135m-instruct``, ``hf:gpt2``, ``inhouse:shakespeare``.

The registry is filled by the plugin hooks. It resolves what a user typed (a full name, a bare
model name, a path) to a :class:`ModelSpec`, and loads it with the right backend, turning every
failure into a one-line :class:`LMAssistError`.
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from lmassist.config import Settings
from lmassist.generation import Backend, LMAssistError, Model, ModelLoadError, ModelSpec
from lmassist.install_hints import backend_install_hint
from lmassist.plugins import PluginManager, get_manager
from lmassist.tasks.base import Task, as_task

T = TypeVar("T")


class Registry:
    """The backends, models and tasks the plugins registered, and name resolution over them.

    A name belongs to whoever registered it first, and built-ins register first (see
    :mod:`lmassist.plugins`): a plugin's ``llamacpp`` backend, its ``summarize`` task or its spec
    named ``llamacpp:smollm2-135m-instruct`` is ignored and reported, never used.

    Backends that set ``remote = True`` (their ``models()`` asks a server) are only asked when the
    user names them: ``openai:MODEL``, ``models(backend="openai")`` or ``models(remote=True)``.
    Listing every model, or resolving a bare name or a typo, stays on this machine.
    """

    def __init__(self, manager: PluginManager | None = None, settings: Settings | None = None) -> None:
        self.manager = manager or get_manager()
        self._settings = settings
        self.backends: dict[str, Backend] = {}
        self._backend_plugin: dict[str, str] = {}
        for plugin, backend in self.manager.collect("register_backends"):
            if not isinstance(backend, Backend) or not backend.name:
                self.manager.report(plugin, "register_backends", TypeError(f"not a named Backend: {backend!r}"))
                continue
            if backend.name in self.backends:
                self.manager.clash(plugin, "register_backends", "backend", backend.name,
                                   self._backend_plugin[backend.name])
                continue
            self.backends[backend.name] = backend
            self._backend_plugin[backend.name] = plugin
        self._registered: dict[str, ModelSpec] = {}
        self._model_plugin: dict[str, str] = {}
        for plugin, spec in self.manager.collect("register_models"):
            if not isinstance(spec, ModelSpec):
                self.manager.report(plugin, "register_models", TypeError(f"not a ModelSpec: {spec!r}"))
                continue
            owner = self._model_plugin.get(spec.full_name)
            if owner is None and not self.manager.is_builtin(plugin):
                # A third-party spec for a built-in backend may add a model, never redefine one.
                backend_owner = self._backend_plugin.get(spec.backend)
                if backend_owner is not None and self.manager.is_builtin(backend_owner):
                    if any(s.full_name == spec.full_name for s in self._listed(spec.backend)):
                        owner = backend_owner
            if owner is not None:
                self.manager.clash(plugin, "register_models", "model", spec.full_name, owner)
                continue
            self._registered[spec.full_name] = spec
            self._model_plugin[spec.full_name] = plugin
        self.task_table = TaskTable(self.manager)
        self.tasks: dict[str, Task] = self.task_table.tasks

    def is_remote(self, backend: str) -> bool:
        """Whether the backend's models live on a server, so that listing them is a request."""
        found = self.backends.get(backend)
        return found is not None and bool(found.remote)

    def remote_backends(self) -> list[str]:
        """Remote backends that are set up here: what a plain listing leaves out, to say so."""
        return [n for n, b in self.backends.items() if self.is_remote(n) and b.unavailable_reason() is None]

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    def backend(self, name: str) -> Backend:
        return named(self.backends, "backend", name)

    def task(self, name: str) -> Task:
        return self.task_table.task(name)

    def task_plugin(self, name: str) -> str:
        """The plugin that registered the task ``name`` (``lmassist.tasks.builtin`` for a built-in)."""
        return self.task_table.plugin(name)

    def _listed(self, backend: str) -> list[ModelSpec]:
        """What one backend lists (its own models only); a listing that raises is reported, not fatal."""
        b = self.backends.get(backend)
        if b is None:
            return []
        try:
            return [spec for spec in b.models() if spec.backend == b.name]
        except Exception as e:  # noqa: BLE001 - a broken backend must not hide the others
            self.manager.report(self._backend_plugin.get(b.name, b.name), "models", e)
            return []

    def models(self, backend: str | None = None, remote: bool = False) -> list[ModelSpec]:
        """Every model that can be named: what each backend finds, then plugins' registered specs.

        A remote backend is asked only when it is named (``backend``) or ``remote`` is set: a plain
        listing must not reach the network.
        """
        found: dict[str, ModelSpec] = {}
        for name, spec in self._registered.items():
            if backend in (None, spec.backend) and self.manager.is_builtin(self._model_plugin[name]):
                found[name] = spec
        for b in self.backends.values():
            if backend not in (None, b.name):
                continue
            if self.is_remote(b.name) and not (remote or backend == b.name):
                continue
            for spec in self._listed(b.name):
                found.setdefault(spec.full_name, spec)
        for name, spec in self._registered.items():
            if backend in (None, spec.backend):
                found.setdefault(name, spec)
        return sorted(found.values(), key=lambda s: (s.backend, s.name))

    def resolve(self, name: str | None = None) -> ModelSpec:
        """Turn what a user typed into a spec; no name means the configured default model."""
        name = (name or self.settings.default_model).strip()
        if not name:
            raise LMAssistError("no model name given")
        backend_name, sep, model = name.partition(":")
        if sep and backend_name in self.backends:
            if self.is_remote(backend_name):
                # The user named the server: the backend checks the name when it loads, so asking
                # the server for its list here would only be a second request.
                for spec in self._registered.values():
                    if spec.backend == backend_name and spec.name == model:
                        return spec
                return self.backend(backend_name).spec_for(model)
            for spec in self.models(backend_name):
                if spec.name == model:
                    return spec
            try:
                return self.backend(backend_name).spec_for(model)
            except LMAssistError as e:
                raise type(e)(f"{e}{self._listing_failed(backend_name)}") from None
        if sep and len(backend_name) > 1:  # "C:\..." is a path, "foo:bar" an unknown backend
            self.backend(backend_name)
        local = self.models()  # bare names never reach a remote server: a typo must not make a request
        matches = self._prefer([s for s in local if s.name == name])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            choices = ", ".join(s.full_name for s in matches)
            raise LMAssistError(f"model {name!r} is ambiguous; say which: {choices}")
        names = [s.full_name for s in local]
        close = difflib.get_close_matches(name, names + [n.split(":", 1)[1] for n in names], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see 'lmassist models list'"
        remote = self.remote_backends()
        if remote:
            hint += f" (a model on a server needs its backend's prefix, as in {remote[0]}:{name})"
        raise LMAssistError(f"unknown model {name!r}{hint}{self._listing_failed()}")

    def _listing_failed(self, backend: str | None = None) -> str:
        """Why a model may be missing: a backend whose model listing raised (else nothing)."""
        plugins = None if backend is None else {self._backend_plugin.get(backend, backend)}
        failed = [e for e in self.manager.errors if e.where == "models" and (plugins is None or e.plugin in plugins)]
        return f" (and {failed[-1]})" if failed else ""

    def _prefer(self, matches: list[ModelSpec]) -> list[ModelSpec]:
        """Narrow a bare name found in several backends: usable backends, then the default's backend.

        ``smollm2-135m-instruct`` is both a llama.cpp and a transformers model; a user who typed the
        bare name means the one that runs here, and when both do, the default model's backend.
        """
        usable = [s for s in matches
                  if s.backend in self.backends and self.backends[s.backend].unavailable_reason() is None] or matches
        default_backend = self.settings.default_model.partition(":")[0]
        return [s for s in usable if s.backend == default_backend] or usable

    def load(self, name: str | None = None, **settings: Any) -> Model:
        """Resolve and load a model, with the user's stored settings for its backend as defaults."""
        spec = self.resolve(name)
        backend = self.backend(spec.backend)
        reason = backend.unavailable_reason()
        if reason:
            fitted = backend_install_hint(backend.name, backend.install_hint)
            hint = f"; install it with: {fitted}" if fitted else ""
            raise LMAssistError(f"backend {backend.name!r} is unavailable ({reason}){hint}")
        if not spec.installed and spec.pull is None:  # added by path, and the file has gone
            raise ModelLoadError(
                f"model {spec.full_name} is missing its file ({spec.source}); add it again with "
                f"'lmassist models add FILE --name {spec.name}', or forget it with 'lmassist models remove {spec.name}'"
            )
        if not spec.installed:
            raise ModelLoadError(
                f"model {spec.full_name} is not installed; run: lmassist models pull {spec.full_name}"
            )
        merged = {**self.settings.backend_settings(backend.name), **{k: v for k, v in settings.items() if v is not None}}
        return backend.load(spec, **merged)


def named(table: dict[str, T], kind: str, name: str) -> T:
    """``table[name]``, or a one-line error that lists the known names of that ``kind``."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise LMAssistError(f"unknown {kind} {name!r}; known {kind}s: {known}") from None


class TaskTable:
    """The tasks the plugins registered, each checked against the task contract once, here, and
    which plugin registered it: the registry's task half, which the command line builds alone
    (its task commands need neither backends nor models).

    A name goes to the first plugin that registers it (built-ins first); a later one is reported as
    a clash. An object that is not a task (:func:`lmassist.tasks.base.as_task` says why) is
    reported as its plugin's failure and skipped, like a backend that is not a ``Backend``.
    """

    def __init__(self, manager: PluginManager) -> None:
        self.tasks: dict[str, Task] = {}
        self._plugin: dict[str, str] = {}
        for plugin, obj in manager.collect("register_tasks"):
            name = getattr(obj, "name", None)
            if isinstance(name, str) and name in self.tasks:
                manager.clash(plugin, "register_tasks", "task", name, self._plugin[name])
                continue
            try:
                task = as_task(obj)
            except TypeError as e:
                manager.report(plugin, "register_tasks", e)
                continue
            self.tasks[task.name] = task
            self._plugin[task.name] = plugin

    def task(self, name: str) -> Task:
        return named(self.tasks, "task", name)

    def plugin(self, name: str) -> str:
        """The plugin that registered the task ``name``."""
        self.task(name)
        return self._plugin[name]
