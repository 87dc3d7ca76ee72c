"""The plugin contract: the hooks a plugin may implement. Built-in features use the same hooks.

A plugin is a module (or object) with functions marked ``@lmassist.hookimpl`` and named after one
of the specifications below, published under the entry-point group ``lmassist``.

A plugin adds names; it never takes one. Built-ins register first and the first registration of a
name wins, so a plugin's backend ``llamacpp``, task ``summarize`` or command ``ask`` is ignored and
reported (``tryfirst``/``trylast`` do not change that). This is what lets a user install a plugin
without it silently changing what their existing commands run. For the same reason a user's own
template file beats a plugin's template of that name (see :mod:`lmassist.templates`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("lmassist")
hookimpl = pluggy.HookimplMarker("lmassist")


@hookspec
def register_backends(register: Callable[[Any], None]) -> None:
    """Call ``register(backend)`` for each :class:`lmassist.generation.Backend` the plugin provides.

    A backend whose ``models()`` asks a server sets ``remote = True``: it is then listed only when
    the user names it, so that nothing reaches the network unless a remote model was chosen.
    """


@hookspec
def register_models(register: Callable[[Any], None]) -> None:
    """Call ``register(spec)`` for each named :class:`lmassist.generation.ModelSpec` (a known model)."""


@hookspec
def register_tasks(register: Callable[[Any], None]) -> None:
    """Call ``register(task)`` for each task (summarize, translate, ...) the plugin provides.

    A task is a :class:`lmassist.tasks.base.Task`; it is checked once, when registered, and one that
    is not a task is reported as the plugin's failure and skipped (see ``docs/plugins.md``).
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``lmassist`` command line; ``cli`` is its :class:`click.Group`.

    A command that replaces or removes one lmassist (or an earlier plugin) added is put back.
    """


@hookspec
def register_templates(register: Callable[[Any], None]) -> None:
    """Call ``register(template)`` for each named prompt template the plugin provides.

    A template is a :class:`lmassist.templates.Template` or a dict with a ``name`` and the fields
    of a template file (``description``, ``system``, ``model``, ``options``, ``attachments``); it
    is checked when registered, and a bad one is reported as the plugin's failure and skipped. A
    user's own template file of the same name takes its place for that user.
    """
