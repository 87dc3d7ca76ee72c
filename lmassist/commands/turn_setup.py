"""What ``ask`` and the line ``chat`` share before a turn runs: ``-f`` attachments, ``-t`` templates,
and the lines that show them on stderr; and ``ask --docs``'s citations after the answer.

Everything the user typed is checked here before history is opened or a model loads, so a bad
``-f`` or an unknown template costs milliseconds and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from lmassist.attachments import Attachment, AttachmentFit, chip, collect, human_size
from lmassist.errors import LMAssistError
from lmassist.templates import Applied, apply_template

FILE_HELP = ("Attach a file, a folder (read recursively; binary files skipped), a glob ('notes/*.md') or - for "
             "stdin. Repeatable. The model sees them on this turn and every later one of the conversation.")


def attach_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-f/--file PATH`` (repeatable) and ``-t/--template NAME``, for ``ask`` and ``chat``."""
    f = click.option("-t", "--template", "template", metavar="NAME",
                     help="Use a saved prompt template (system prompt, options, model, attachments); "
                          "flags given here win over it. See `lmassist templates list`.")(f)
    return click.option("-f", "--file", "files", metavar="PATH", multiple=True, help=FILE_HELP)(f)


@dataclass
class TurnSetup:
    """The template merged with the flags, and the attachments read."""

    applied: Applied
    attachments: list[Attachment]
    skipped: str | None = None

    @property
    def reads_stdin(self) -> bool:
        """``-f -`` took stdin: it is an attachment, not context to put before the prompt."""
        return "-" in self.applied.attachments


def prepare(template: str | None, system: str | None, model: str | None, changes: dict[str, Any],
            files: Sequence[str]) -> TurnSetup:
    """Merge ``-t`` with the explicit flags (they win) and read every attachment, or fail in one line."""
    applied = apply_template(template, system=system, model=model, options=changes, attachments=files)
    collected = collect(applied.attachments) if applied.attachments else []
    skipped = collected.skipped_line() if applied.attachments else None  # type: ignore[union-attr]
    return TurnSetup(applied, list(collected), skipped)


def say(text: str) -> None:
    """A line on stderr that must not fail when the terminal is gone (SIGHUP)."""
    try:
        click.echo(text, err=True)
    except OSError:
        pass


CHIPS_SHOWN = 5  # a folder of hundreds of files is a few chips and one total, not a screenful


def show_attached(attachments: Sequence[Attachment], skipped: str | None = None) -> None:
    """Each attachment as its chip on stderr (stdout stays the answer, for pipes); past
    :data:`CHIPS_SHOWN` files, the rest as one line with their count, size and tokens."""
    shown = attachments if len(attachments) <= CHIPS_SHOWN + 1 else attachments[:CHIPS_SHOWN]
    for a in shown:
        say(f"Attached {chip(a)}")
    rest = attachments[len(shown):]
    if rest:
        size, tokens = sum(a.size for a in rest), sum(a.tokens for a in rest)
        say(f"Attached {len(rest)} more files · {human_size(size)} · ~{tokens:,} tokens")
    if skipped:
        say(f"({skipped})")


def show_fit(fit: AttachmentFit | None) -> None:
    """The one line that says the attachments did not fit whole and retrieval chose passages."""
    if fit is not None and fit.retrieved:
        say(fit.summary)


def citation_dicts(citations: Sequence[Any]) -> list[dict[str, Any]]:
    """``docs_answer.Citation`` values as saved with the reply and printed by ``--json``."""
    return [{"path": c.path, "line": c.line, "end_line": c.end_line} for c in citations]


def citation_lines(citations: Sequence[Any]) -> list[str]:
    """``path:line``, each once, in the order cited."""
    return list(dict.fromkeys(f"{c.path}:{c.line}" for c in citations))


def check_docs_combination(docs: str | None, setup: TurnSetup) -> None:
    if docs is not None and not docs.strip():
        raise LMAssistError("--docs needs a collection name; see `lmassist docs list`")
    if docs and setup.attachments:
        raise LMAssistError("--docs answers from an indexed folder; -f attachments cannot be added to it "
                            "(ask about the files without --docs, or `lmassist docs add` their folder)")
