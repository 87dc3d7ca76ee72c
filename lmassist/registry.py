"""Backends and models by name: ``llamacpp:smollm2-135m-instruct``, ``hf:gpt2``, ``inhouse:shakespeare``.

The registry is filled by the plugin hooks. It resolves what a user typed (a full name, a bare
model name, a path) to a :class:`ModelSpec`, and loads it with the right backend, turning every
failure into a one-line :class:`LMAssistError`.
"""

from __future__ import annotations

import difflib
from typing import Any

from lmassist.config import Settings
from lmassist.generation import Backend, LMAssistError, Model, ModelLoadError, ModelSpec
from lmassist.plugins import PluginManager, get_manager


class Registry:
    def __init__(self, manager: PluginManager | None = None, settings: Settings | None = None) -> None:
        self.manager = manager or get_manager()
        self._settings = settings
        self.backends: dict[str, Backend] = {}
        self._backend_plugin: dict[str, str] = {}
        for plugin, backend in self.manager.collect("register_backends"):
            if not isinstance(backend, Backend) or not backend.name:
                self.manager._fail(plugin, "register_backends", TypeError(f"not a named Backend: {backend!r}"))
                continue
            self.backends.setdefault(backend.name, backend)
            self._backend_plugin.setdefault(backend.name, plugin)
        self._registered: dict[str, ModelSpec] = {}
        for plugin, spec in self.manager.collect("register_models"):
            if not isinstance(spec, ModelSpec):
                self.manager._fail(plugin, "register_models", TypeError(f"not a ModelSpec: {spec!r}"))
                continue
            self._registered.setdefault(spec.full_name, spec)
        self.tasks: dict[str, Any] = {}
        for plugin, task in self.manager.collect("register_tasks"):
            if not getattr(task, "name", None):
                self.manager._fail(plugin, "register_tasks", TypeError(f"not a named task: {task!r}"))
                continue
            self.tasks.setdefault(task.name, task)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    def backend(self, name: str) -> Backend:
        try:
            return self.backends[name]
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise LMAssistError(f"unknown backend {name!r}; known backends: {known}") from None

    def task(self, name: str) -> Any:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise LMAssistError(f"unknown task {name!r}; known tasks: {known}") from None

    def models(self, backend: str | None = None) -> list[ModelSpec]:
        """Every model that can be named: registered ones, then what each available backend finds."""
        found = {k: v for k, v in self._registered.items() if backend in (None, v.backend)}
        for b in self.backends.values():
            if backend not in (None, b.name):
                continue
            try:
                for spec in b.models():
                    found.setdefault(spec.full_name, spec)
            except Exception as e:  # noqa: BLE001 - a broken backend must not hide the others
                self.manager._fail(self._backend_plugin.get(b.name, b.name), "models", e)
        return sorted(found.values(), key=lambda s: (s.backend, s.name))

    def resolve(self, name: str | None = None) -> ModelSpec:
        """Turn what a user typed into a spec; no name means the configured default model."""
        name = (name or self.settings.default_model).strip()
        if not name:
            raise LMAssistError("no model name given")
        backend_name, sep, model = name.partition(":")
        if sep and backend_name in self.backends:
            for spec in self.models(backend_name):
                if spec.name == model:
                    return spec
            try:
                return self.backend(backend_name).spec_for(model)
            except LMAssistError as e:
                raise type(e)(f"{e}{self._listing_failed(backend_name)}") from None
        if sep and len(backend_name) > 1:  # "C:\..." is a path, "foo:bar" an unknown backend
            self.backend(backend_name)
        matches = self._prefer([s for s in self.models() if s.name == name])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            choices = ", ".join(s.full_name for s in matches)
            raise LMAssistError(f"model {name!r} is ambiguous; say which: {choices}")
        names = [s.full_name for s in self.models()]
        close = difflib.get_close_matches(name, names + [n.split(":", 1)[1] for n in names], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see 'lmassist models list'"
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
        usable = [s for s in matches if self.backends[s.backend].unavailable_reason() is None] or matches
        default_backend = self.settings.default_model.partition(":")[0]
        return [s for s in usable if s.backend == default_backend] or usable

    def load(self, name: str | None = None, **settings: Any) -> Model:
        """Resolve and load a model, with the user's stored settings for its backend as defaults."""
        spec = self.resolve(name)
        backend = self.backend(spec.backend)
        reason = backend.unavailable_reason()
        if reason:
            hint = f"; install it with: {backend.install_hint}" if backend.install_hint else ""
            raise LMAssistError(f"backend {backend.name!r} is unavailable ({reason}){hint}")
        if not spec.installed:
            raise ModelLoadError(
                f"model {spec.full_name} is not installed; run: lmassist models pull {spec.full_name}"
            )
        merged = {**self.settings.backend_settings(backend.name), **{k: v for k, v in settings.items() if v is not None}}
        return backend.load(spec, **merged)
