"""The tasks on the command line: one command per task in the registry, and ``lmassist tasks``.

A task from an installed plugin becomes a command here with no change to lmassist: the commands
come from the registry's task table (:class:`lmassist.registry.TaskTable`), which checked each
task against the contract when its plugin registered it.
"""

from __future__ import annotations

import json

import click

from lmassist import hookimpl
from lmassist.commands.task_command import task_command
from lmassist.generation import LMAssistError
from lmassist.plugins import PluginManager, get_manager
from lmassist.registry import TaskTable
from lmassist.tasks.base import Task


def command_for(task: Task) -> click.Command:
    """The task's own click command, or one built from its declaration."""
    return task.command() or task_command(task)


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
@click.option("--schema", metavar="TASK", help="Print the JSON schema of TASK's --json output.")
def tasks_command(as_json: bool, schema: str | None) -> None:
    """List the tasks (built-in and from plugins): each is a command and a TUI slash command."""
    manager = get_manager()
    table = TaskTable(manager)
    if schema:
        if table.task(schema).json_schema is None:
            raise LMAssistError(f"task {schema!r} has no --json output")
        click.echo(json.dumps(table.task(schema).json_schema, indent=2))
        return
    rows = [{
        "name": name, "summary": task.summary, "plugin": table.plugin(name),
        "builtin": manager.is_builtin(table.plugin(name)), "slash_usage": task.slash_usage,
    } for name, task in table.tasks.items()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        origin = "built-in" if r["builtin"] else f"plugin {r['plugin']}"
        click.echo(f"{r['name']:<{width}}  {r['summary']}  [{origin}]")


@hookimpl
def register_commands(cli: click.Group) -> None:
    manager = get_manager()
    table = TaskTable(manager)
    for name, task in table.tasks.items():
        add_task_command(cli, manager, task, table.plugin(name))
    if "tasks" not in cli.commands:
        cli.add_command(tasks_command)


def add_task_command(cli: click.Group, manager: PluginManager, task: Task, plugin: str) -> None:
    """``task``'s command under its name, owned by ``plugin``; a task may not take a command's name
    (``lmassist models`` stays lmassist's own), and one whose command fails to build is reported."""
    if task.name in cli.commands:
        owner = manager.command_owner.get((task.name,), "lmassist")
        if owner != plugin and not (manager.is_builtin(plugin) and manager.is_builtin(owner)):
            manager.clash(plugin, "register_commands", "command", task.name, owner)
        return
    try:
        cli.add_command(command_for(task), task.name)
    except Exception as e:  # noqa: BLE001 - a broken plugin task must not break the CLI
        manager.report(plugin, "register_commands", e)
        return
    manager.command_owner[(task.name,)] = plugin  # the task's plugin owns its command
