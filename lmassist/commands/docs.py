"""``lmassist docs``: folders as a searchable knowledge base (add, list, update, remove, search).

A thin face on :mod:`lmassist.docindex`: the index file, the folder walk and the search live there;
this module turns them into commands, shows progress on stderr and prints results. rich is imported
inside the commands (through :mod:`lmassist.commands.common`), so ``lmassist --help`` does not pay
for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import NamesTable, ProgressReporter, console
from lmassist.config import valid_name
from lmassist.docindex import schema
from lmassist.docindex.index import DocIndex, rebuild
from lmassist.docindex.records import UpdateSummary
from lmassist.errors import LMAssistError


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M")


@contextmanager
def _progress(name: str) -> Iterator[Any]:
    """Files indexed so far on stderr (a bar on a terminal, a line every few seconds otherwise); the
    callback takes the relative path of each file looked at."""
    reporter = ProgressReporter(f"docs {name}", unit="files", lazy=True)
    count = 0

    def step(rel: str) -> None:
        nonlocal count
        count += 1
        reporter.update(count, None)

    reporter.start()
    try:
        yield step
    except BaseException:
        reporter.stop(finished=False)
        raise
    reporter.stop()


class _OrderedGroup(click.Group):
    """Lists subcommands in the order a user meets them, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_OrderedGroup)
def docs() -> None:
    """Folders as a searchable knowledge base.

    Add a folder of notes, docs or code once; lmassist splits its files into
    passages (Markdown by its headings, paragraphs and code blocks) and keeps
    a full-text index in its data folder. `docs update` re-reads only the
    files that changed; `docs search` finds passages with their path:line.

    \b
      lmassist docs add ~/notes
      lmassist docs add ~/src/project/docs --name project --include "*.md"
      lmassist docs list
      lmassist docs search notes "who brings the budget"
      lmassist docs update
      lmassist docs remove project
    """


@docs.command("add")
@click.argument("folder", metavar="DIR")
@click.option("--name", help="The collection's name (default: the folder's name).")
@click.option("--include", "include", multiple=True, metavar="GLOB",
              help="Index only files matching GLOB (path or file name), repeatable; default: every file.")
@click.option("--exclude", "exclude", multiple=True, metavar="GLOB",
              help="Leave out files matching GLOB, repeatable (e.g. 'drafts/*').")
def add_cmd(folder: str, name: str | None, include: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """Index a folder as a new collection.

    Text, Markdown, reStructuredText, HTML and source code are indexed;
    binary, huge and unreadable files are skipped and counted. Hidden
    folders are not entered.

    \b
      lmassist docs add ~/notes
      lmassist docs add ~/work/wiki --name wiki --exclude "archive/*"
      lmassist docs add . --name repo --include "*.py" --include "*.md"
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise LMAssistError(f"no such folder: {folder}")
    if not root.is_dir():
        raise LMAssistError(f"{folder} is not a folder")
    root = root.resolve()
    if name is None:
        try:
            name = valid_name(root.name, "collection name")
        except LMAssistError as e:
            raise LMAssistError(f"{e}; choose a name with --name NAME") from None
    else:
        valid_name(name, "collection name")
    with DocIndex() as index, _progress(name) as step:
        summary = index.add(name, root, include, exclude, progress=step)
    click.echo(summary.line())


@docs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List the collections with their folders, file and passage counts.

    \b
      lmassist docs list
      lmassist docs list --json
    """
    with DocIndex() as index:
        collections = index.list()
    if as_json:
        _echo_json([{k: v for k, v in asdict(c).items() if k != "id"} for c in collections])
        return
    con = console()
    if not collections:
        con.print("No collections yet. Add a folder with `lmassist docs add DIR`.", markup=False)
        return
    from rich.text import Text

    table = NamesTable()
    table.name_column("Name", style="cyan")
    table.column("Files", justify="right")
    table.column("Passages", justify="right")
    table.column("Updated")
    table.name_column("Folder", style="dim")
    for c in collections:
        table.add_row(c.name, str(c.files), str(c.chunks), _when(c.updated), Text(c.root))
    table.print(con)


def _damaged_index() -> DocIndex | None:
    """The index opened, or None when it is damaged (so only a full rebuild can help)."""
    try:
        index = DocIndex()
    except LMAssistError as e:
        if schema.REBUILD_HINT in str(e):
            return None
        raise
    try:
        problems = index.check()
    except LMAssistError as e:
        if schema.REBUILD_HINT not in str(e):
            index.close()
            raise
        problems = [str(e)]
    if problems:
        index.close()
        return None
    return index


def _update_all(index: DocIndex, names: list[str], rebuild_files: bool) -> list[str]:
    """Update each collection in turn, printing its summary; the errors of those that failed."""
    failed: list[str] = []
    for name in names:
        try:
            with _progress(name) as step:
                summary = index.update(name, rebuild=rebuild_files, progress=step)
        except LMAssistError as e:
            if len(names) == 1:
                raise
            failed.append(str(e))
            continue
        click.echo(summary.line())
    return failed


@docs.command("update")
@click.argument("name", required=False)
@click.option("--rebuild", "rebuild_index", is_flag=True,
              help="Re-read and re-index every file; a damaged index is moved aside and made anew.")
def update_cmd(name: str | None, rebuild_index: bool) -> None:
    """Bring collections up to date with their folders.

    Only files whose content changed are read again; deleted files are
    dropped. Without NAME every collection is updated. The summary line
    counts files added, updated, removed, unchanged and skipped (by reason).

    \b
      lmassist docs update
      lmassist docs update notes
      lmassist docs update --rebuild        start the index over (after damage)
    """
    if name is not None:
        valid_name(name, "collection name")
    if rebuild_index:
        index = _damaged_index()
        if index is None:
            click.echo("The document index is damaged; moving it aside and indexing every folder again.",
                       err=True)
            with _progress("rebuild") as step:
                summaries: list[UpdateSummary] = rebuild(progress=step)
            for summary in summaries:
                click.echo(summary.line())
            return
    else:
        index = DocIndex()
    with index:
        names = [name] if name is not None else [c.name for c in index.list()]
        if not names:
            click.echo("No collections yet. Add a folder with `lmassist docs add DIR`.")
            return
        failed = _update_all(index, names, rebuild_index)
    if failed:
        raise LMAssistError("; ".join(failed))


@docs.command("remove")
@click.argument("name")
def remove_cmd(name: str) -> None:
    """Forget a collection (its folder and files are not touched).

    \b
      lmassist docs remove notes
    """
    valid_name(name, "collection name")
    with DocIndex() as index:
        index.remove(name)
    click.echo(f"Removed collection {name} (its folder was not touched)")


@docs.command("search")
@click.argument("name")
@click.argument("query", nargs=-1, required=True)
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many passages to show, best first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (root, path, lines, heading, text, score).")
def search_cmd(name: str, query: tuple[str, ...], k: int, as_json: bool) -> None:
    """Find the passages of a collection that best match a question.

    Any of the question's words may match; passages are ranked by BM25.
    Each passage is shown under its path:line citation (relative to the
    collection's folder), the passages `ask --docs` will answer from.

    \b
      lmassist docs search notes "who brings the budget?"
      lmassist docs search notes budget -k 3
      lmassist docs search notes budget --json | jq '.[0].citation'
    """
    valid_name(name, "collection name")
    text = " ".join(query)
    with DocIndex() as index:
        hits = index.search(name, text, k=k)
    if as_json:
        _echo_json([{**asdict(h), "citation": h.citation} for h in hits])
        return
    if not hits:
        click.echo(f"No passages in {name} match {text!r}.")
        return
    passages = "1 passage" if len(hits) == 1 else f"{len(hits)} passages"
    click.echo(click.style(f"{passages} from {name} ({hits[0].root}):", dim=True))
    for hit in hits:
        click.echo()
        head = click.style(hit.citation, fg="cyan", bold=True)
        if hit.heading:
            head += click.style(f"  {hit.heading}", dim=True)
        click.echo(head)
        for line in hit.text.rstrip("\n").splitlines():
            click.echo(f"  {line}".rstrip())


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(docs)
