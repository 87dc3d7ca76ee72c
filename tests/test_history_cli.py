"""``lmassist history`` through click's CliRunner, on a bare group that only our hook has filled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from lmassist.commands.history import register_commands
from lmassist.generation import GenerationStats, LMAssistError
from lmassist.store import Store


class _Root(click.Group):
    """Stands in for lmassist's root command: a user-facing error becomes ``Error: ...`` on one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LMAssistError as e:
            raise click.ClickException(str(e)) from None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMASSIST_HOME", str(tmp_path / "home"))
    for name in ("LMASSIST_DATA_DIR", "LMASSIST_CONFIG_DIR", "LMASSIST_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables wide enough to show whole ids and titles
    return tmp_path / "home"


@pytest.fixture
def cli() -> click.Group:
    root = _Root("lmassist")
    register_commands(cli=root)
    return root


def run(cli: click.Group, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["history", *args], input=input, catch_exceptions=False)


@pytest.fixture
def chats(home: Path) -> dict[str, str]:
    with Store() as s:
        a = s.new_conversation(model="llamacpp:smol").id
        s.add_message(a, "user", "How do I bake sourdough bread?")
        s.add_message(a, "assistant", "Use a **starter** and patience.", model="llamacpp:smol",
                      stats=GenerationStats(prompt_tokens=9, generated_tokens=6, total_s=0.4))
        b = s.new_conversation(title="Trip planning").id
        s.add_message(b, "user", "Plan three days in Lisbon")
        s.add_message(b, "assistant", "Day one: Alfama", model="hf:gpt2", status="interrupted")
    return {"bread": a, "trip": b}


def test_hook_adds_a_history_group_with_every_command(cli: click.Group) -> None:
    group = cli.commands["history"]
    assert isinstance(group, click.Group)
    assert list(group.commands) == ["list", "show", "search", "export", "rename", "delete"]
    result = run(cli, "--help")
    assert result.exit_code == 0 and "lmassist history search" in result.output
    for name in group.commands:
        sub = run(cli, name, "--help")
        assert sub.exit_code == 0 and f"lmassist history {name}" in sub.output, name


def test_list_table_and_json(cli: click.Group, chats: dict[str, str]) -> None:
    result = run(cli, "list")
    assert result.exit_code == 0, result.output
    assert chats["bread"] in result.output and chats["trip"] in result.output
    assert "How do I bake sourdough bread?" in result.output and "hf:gpt2" in result.output
    assert result.output.index(chats["trip"]) < result.output.index(chats["bread"])  # newest first
    data = json.loads(run(cli, "list", "--json").output)
    assert [c["id"] for c in data] == [chats["trip"], chats["bread"]]
    assert data[0]["title"] == "Trip planning" and data[0]["message_count"] == 2
    assert len(json.loads(run(cli, "list", "-n", "1", "--json").output)) == 1
    assert run(cli, "list", "-n", "0").exit_code == 2


def test_list_when_empty(cli: click.Group, home: Path) -> None:
    result = run(cli, "list")
    assert result.exit_code == 0 and "No conversations yet" in result.output
    assert json.loads(run(cli, "list", "--json").output) == []


def test_show_transcript_and_json(cli: click.Group, chats: dict[str, str]) -> None:
    # A unique prefix works. Ids made in the same millisecond differ only at the end, so the prefix
    # is one character past what the two chats' ids share (the whole id when that is all of it).
    shared = len(os.path.commonprefix([chats["trip"], chats["bread"]]))
    result = run(cli, "show", chats["trip"][: shared + 1])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Trip planning" in out and "Plan three days in Lisbon" in out
    assert "Day one: Alfama" in out and "(interrupted)" in out and "hf:gpt2" in out
    bread = run(cli, "show", chats["bread"]).output
    assert "starter" in bread and "**starter**" not in bread  # the reply is rendered as Markdown
    data = json.loads(run(cli, "show", chats["bread"], "--json").output)
    assert data["id"] == chats["bread"] and data["messages"][1]["stats"]["generated_tokens"] == 6


def test_search_table_and_json(cli: click.Group, chats: dict[str, str]) -> None:
    result = run(cli, "search", "sourdough")
    assert result.exit_code == 0, result.output
    assert chats["bread"] in result.output and "sourdough" in result.output
    assert "\x02" not in result.output and "\x03" not in result.output
    hits = json.loads(run(cli, "search", "lisbon", "--json").output)
    assert [h["conversation_id"] for h in hits] == [chats["trip"]]
    assert "**Lisbon**" in hits[0]["snippet"]
    multi = json.loads(run(cli, "search", "three", "days", "--json").output)  # several words, unquoted
    assert len(multi) == 1
    assert "No messages match" in run(cli, "search", "zanzibar").output


@pytest.mark.parametrize("query", ['"', "*", "AND", "(", 'bread"', "NEAR(", "-"])
def test_search_with_fts_syntax_does_not_crash(cli: click.Group, chats: dict[str, str], query: str) -> None:
    result = run(cli, "search", query)
    assert result.exit_code == 0, result.output
    assert json.loads(run(cli, "search", query, "--json").output) is not None


def test_export_to_stdout_and_file(cli: click.Group, chats: dict[str, str], tmp_path: Path) -> None:
    md = run(cli, "export", chats["trip"])
    assert md.exit_code == 0 and md.output.startswith("# Trip planning\n")
    assert "## Assistant · `hf:gpt2` (interrupted)" in md.output
    target = tmp_path / "out" / "chat.json"
    result = run(cli, "export", chats["bread"], "--format", "json", "-o", str(target))
    assert result.exit_code == 0, result.output
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["id"] == chats["bread"] and [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    assert run(cli, "export", chats["bread"], "--format", "html").exit_code == 2


def test_export_to_a_directory_is_a_one_line_error(cli: click.Group, chats: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    result = run(cli, "export", chats["bread"], "-o", str(tmp_path / "adir"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line] == [
        f"Error: cannot write {tmp_path / 'adir'}: it is a folder; give a file name"
    ]
    assert list((tmp_path / "adir").iterdir()) == []


def test_rename(cli: click.Group, chats: dict[str, str]) -> None:
    result = run(cli, "rename", chats["bread"], "Bread notes")
    assert result.exit_code == 0 and "Bread notes" in result.output
    with Store() as s:
        assert s.get(chats["bread"]).title == "Bread notes"
    empty = run(cli, "rename", chats["bread"], "  ")
    assert empty.exit_code == 1 and empty.output.startswith("Error: ")


def test_delete_asks_first(cli: click.Group, chats: dict[str, str]) -> None:
    declined = run(cli, "delete", chats["bread"], input="n\n")
    assert declined.exit_code == 1 and "Delete" in declined.output
    with Store() as s:
        assert s.get(chats["bread"]).message_count == 2
    accepted = run(cli, "delete", chats["bread"], input="y\n")
    assert accepted.exit_code == 0 and f"Deleted {chats['bread']}" in accepted.output
    forced = run(cli, "delete", chats["trip"], "--yes")
    assert forced.exit_code == 0
    with Store() as s:
        assert s.conversations() == [] and s.search("sourdough") == []


@pytest.mark.parametrize("command", ["show", "export", "rename", "delete"])
def test_unknown_or_ambiguous_id_is_a_one_line_error(cli: click.Group, home: Path, command: str) -> None:
    with Store() as s:
        ids = [s.new_conversation(title=str(i)).id for i in range(2)]
    extra = ["new title"] if command == "rename" else ["--yes"] if command == "delete" else []
    unknown = run(cli, command, "fffffff", *extra)
    assert unknown.exit_code == 1
    assert unknown.output.startswith("Error: no conversation") and unknown.output.count("\n") == 1
    common = ids[0][: next(i for i in range(16) if ids[0][i] != ids[1][i])]
    if common:
        ambiguous = run(cli, command, common, *extra)
        assert ambiguous.exit_code == 1 and "ambiguous" in ambiguous.output


def test_corrupt_history_is_a_one_line_error(cli: click.Group, home: Path) -> None:
    db = home / "data" / "history.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database at all\n" * 100)
    before = db.read_bytes()
    result = run(cli, "list")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and str(db) in result.output and result.output.count("\n") == 1
    assert db.read_bytes() == before
