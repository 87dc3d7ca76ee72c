"""``lmassist history``: list, read, search, export, rename and delete past conversations.

rich is imported inside the commands, so that ``lmassist --help`` does not pay for it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from lmassist import hookimpl
from lmassist.commands.common import NamesTable
from lmassist.outputs import check_output, write_output
from lmassist.progress import human_size
from lmassist.store import Store, citations_of

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# Markers that cannot occur in chat text, so search snippets can be highlighted without parsing markup.
_MARK_ON, _MARK_OFF = "\x02", "\x03"
_ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta"}


def _store() -> Store:
    return Store()


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _when(moment: datetime) -> str:
    """Local time, short: users read the list to find "the chat from this morning"."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _highlighted(snippet: str) -> Text:
    from rich.text import Text

    text = Text()
    on = False
    for part in snippet.replace(_MARK_OFF, _MARK_ON).split(_MARK_ON):
        if part:
            text.append(part, style="bold yellow" if on else None)
        on = not on
    return text


class _OrderedGroup(click.Group):
    """Lists subcommands in the order a user meets them, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_OrderedGroup)
def history() -> None:
    """Past conversations: list, read, search, export, rename, delete.

    Every chat is saved as you go, in a SQLite file under lmassist's data folder
    (LMASSIST_HOME or LMASSIST_DATA_DIR move it). An ID may be shortened to any
    unique prefix of it.

    \b
      lmassist history list
      lmassist history search "budget meeting"
      lmassist history show 019ab3c4
      lmassist history export 019ab3c4 --format md -o chat.md
    """


@history.command("list")
@click.option("-n", "--limit", "limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many conversations to show, most recent first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(limit: int, as_json: bool) -> None:
    """List conversations, most recently updated first.

    \b
      lmassist history list
      lmassist history list -n 100
      lmassist history list --json | jq '.[0].id'
    """
    with _store() as store:
        conversations = store.conversations(limit=limit)
    if as_json:
        _echo_json([c.to_dict() for c in conversations])
        return
    console = _console()
    if not conversations:
        console.print("No conversations yet. Start one with `lmassist`.")
        return
    # The ID and the model are what people copy into the next command: never cut (NamesTable);
    # the title gives up its room instead.
    table = NamesTable()
    table.name_column("ID", style="cyan")
    table.column("Updated")
    table.column("Msgs", justify="right")
    table.name_column("Model", style="dim")
    table.column("Title", flexible=True, min_width=10)
    from rich.text import Text

    for c in conversations:  # Text: a title or model name with [brackets] is not markup
        table.add_row(c.id, _when(c.updated), str(c.message_count), Text(c.model or ""), Text(c.display_title))
    table.print(console)


@history.command("show")
@click.argument("conversation_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the conversation and its messages as JSON.")
def show_cmd(conversation_id: str, as_json: bool) -> None:
    """Print a conversation's transcript.

    Assistant replies are rendered as Markdown; an interrupted reply is marked.

    \b
      lmassist history show 019ab3c4
      lmassist history show 019ab3c4 --json
    """
    with _store() as store:
        if as_json:
            click.echo(store.export(conversation_id, "json"), nl=False)
            return
        conv = store.get(conversation_id)
        messages = store.messages(conv.id)
        attached: dict[int, list[str]] = {}
        for a in store.attachments(conv.id):
            attached.setdefault(a.message_id, []).append(f"{a.name} · {human_size(a.size)} · sha256 {a.sha256[:12]}")
    from rich.markdown import Markdown
    from rich.text import Text

    console = _console()
    console.print(Text(conv.display_title, style="bold"))
    facts = [conv.id, f"updated {_when(conv.updated)}", f"{len(messages)} messages"]
    if conv.model:
        facts.insert(1, conv.model)
    console.print(Text(" · ".join(facts), style="dim"))
    for m in messages:
        console.print()
        head = Text(m.role.capitalize(), style=_ROLE_STYLES.get(m.role, "bold"))
        if m.model and m.role == "assistant":
            head.append(f" · {m.model}", style="dim")
        if m.status != "complete":
            head.append(f" ({m.status})", style="yellow")
        console.print(head)
        if m.role == "assistant" and m.content:
            console.print(Markdown(m.content))
        else:
            console.print(Text(m.content or "(empty)"))
        for label in attached.get(m.id, []):
            console.print(Text(f"Attached {label}", style="dim"), soft_wrap=True)  # a path is copied whole
        cited = citations_of(m)
        if cited:
            console.print(Text("Sources:", style="dim"))
            for c in cited:
                console.print(Text(c), soft_wrap=True)


@history.command("search")
@click.argument("text", nargs=-1, required=True)
@click.option("-n", "--limit", "limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many matches to show, best first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def search_cmd(text: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Full-text search over every message ever saved.

    Every word must appear (in any order); words are matched by their stem, so
    "run" also finds "running". End a word with * to match its beginning.
    Quotes and punctuation are searched as plain text.

    \b
      lmassist history search budget meeting
      lmassist history search "deploy*" -n 5
      lmassist history search tokenizer --json
    """
    query = " ".join(text)
    with _store() as store:
        if as_json:
            _echo_json([h.to_dict() for h in store.search(query, limit=limit)])
            return
        hits = store.search(query, limit=limit, highlight=(_MARK_ON, _MARK_OFF))
    console = _console()
    if not hits:
        console.print(f"No messages match {query!r}.")
        return
    table = NamesTable()
    table.name_column("ID", style="cyan")
    table.column("When")
    table.column("Role")
    table.column("Match", flexible=True, min_width=20, wrap=True)
    for h in hits:
        table.add_row(h.conversation_id, _when(h.created), h.role, _highlighted(" ".join(h.snippet.split())))
    table.print(console)


@history.command("export")
@click.argument("conversation_id", metavar="ID")
@click.option("-f", "--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="A Markdown transcript, or JSON with every message's options and stats.")
@click.option("-o", "--output", metavar="FILE", default="-",
              help="File to write; - or nothing for stdout. A regular file is replaced atomically and keeps "
              "its permissions, a symlink is written through, a device or folder is refused.")
def export_cmd(conversation_id: str, fmt: str, output: str) -> None:
    """Export a conversation as Markdown or JSON.

    \b
      lmassist history export 019ab3c4 > chat.md
      lmassist history export 019ab3c4 --format json -o chat.json
    """
    target = check_output(output) if output != "-" else None  # before the store is read
    with _store() as store:
        text = store.export(conversation_id, fmt)
    if target is None:
        click.echo(text, nl=False)
        return
    write_output(target, text)
    click.echo(f"Wrote {output}", err=True)


@history.command("rename")
@click.argument("conversation_id", metavar="ID")
@click.argument("title")
def rename_cmd(conversation_id: str, title: str) -> None:
    """Give a conversation a new title.

    \b
      lmassist history rename 019ab3c4 "Trip to Lisbon"
    """
    with _store() as store:
        conv = store.get(conversation_id)
        store.rename(conv.id, title)
        click.echo(f"Renamed {conv.id}: {store.get(conv.id).display_title}")


@history.command("delete")
@click.argument("conversation_id", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_cmd(conversation_id: str, yes: bool) -> None:
    """Delete a conversation and all its messages, for good.

    \b
      lmassist history delete 019ab3c4
      lmassist history delete 019ab3c4 --yes
    """
    with _store() as store:
        conv = store.get(conversation_id)
        if not yes:
            click.confirm(
                f"Delete {conv.id} {conv.display_title!r} ({conv.message_count} messages)?",
                default=False,
                abort=True,
            )
        store.delete(conv.id)  # the full id: a prefix could match a conversation created meanwhile
    click.echo(f"Deleted {conv.id}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(history)
