"""The built-in task plugin: registers the four tasks, a command per registered task, and ``lmassist tasks``.

It uses the same hooks a third-party plugin uses. ``register_commands`` turns *every* task in the
registry into a CLI command, so a task from an installed plugin appears in ``lmassist --help`` with
no change to lmassist. Task modules are small and import nothing heavy, so this stays cheap.
"""

from __future__ import annotations

import json
from typing import Any

import click

from lmassist import hookimpl


def builtin_tasks() -> list[Any]:
    from lmassist.tasks.qa import QATask
    from lmassist.tasks.sentiment import SentimentTask
    from lmassist.tasks.summarize import SummarizeTask
    from lmassist.tasks.translate import TranslateTask

    return [SummarizeTask(), TranslateTask(), SentimentTask(), QATask()]


@hookimpl
def register_tasks(register: Any) -> None:
    for task in builtin_tasks():
        register(task)


def _tasks_with_origin() -> list[tuple[str, Any]]:
    """(plugin name, task) for every registered task; the first registration of a name wins.

    Built-ins register first, so a plugin's ``summarize`` is ignored and reported as a clash (the
    registry reports the same clash; the manager keeps one copy).
    """
    from lmassist.plugins import get_manager

    manager = get_manager()
    owners: dict[str, str] = {}
    found = []
    for plugin, task in manager.collect("register_tasks"):
        name = getattr(task, "name", None)
        if not name:
            continue
        if name in owners:
            manager.clash(plugin, "register_tasks", "task", name, owners[name])
            continue
        owners[name] = plugin
        found.append((plugin, task))
    return found


def command_for(task: Any) -> click.Command:
    """The task's own click command, or (for a duck-typed plugin task) one built from the contract."""
    build = getattr(task, "command", None)
    if callable(build):
        return build()
    from lmassist.commands.task_command import task_command

    return task_command(task)


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
@click.option("--schema", metavar="TASK", help="Print the JSON schema of TASK's --json output.")
def tasks_command(as_json: bool, schema: str | None) -> None:
    """List the tasks (built-in and from plugins): each is a command and a TUI slash command."""
    from lmassist.generation import LMAssistError

    found = _tasks_with_origin()
    if schema:
        for _, task in found:
            if task.name == schema:
                s = getattr(task, "json_schema", None)
                if s is None:
                    raise LMAssistError(f"task {schema!r} has no --json output")
                click.echo(json.dumps(s, indent=2))
                return
        raise LMAssistError(f"unknown task {schema!r}; known tasks: {', '.join(t.name for _, t in found)}")
    rows = [{
        "name": t.name, "summary": getattr(t, "summary", ""), "plugin": plugin,
        "builtin": plugin == __name__, "slash_usage": getattr(t, "slash_usage", f"/{t.name}"),
    } for plugin, t in found]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        origin = "built-in" if r["builtin"] else f"plugin {r['plugin']}"
        click.echo(f"{r['name']:<{width}}  {r['summary']}  [{origin}]")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from lmassist.plugins import get_manager

    manager = get_manager()
    for plugin, task in _tasks_with_origin():
        if task.name in cli.commands:
            # A task may not take a command's name (`lmassist models` stays lmassist's own).
            owner = manager.command_owner.get((task.name,), "lmassist")
            if owner != plugin and not (manager.is_builtin(plugin) and manager.is_builtin(owner)):
                manager.clash(plugin, "register_commands", "command", task.name, owner)
            continue
        try:
            cli.add_command(command_for(task), task.name)
        except Exception as e:  # noqa: BLE001 - a broken plugin task must not break the CLI
            manager._fail(plugin, "register_commands", e)
            continue
        manager.command_owner[(task.name,)] = plugin  # the task's plugin owns its command
    if "tasks" not in cli.commands:
        cli.add_command(tasks_command)
