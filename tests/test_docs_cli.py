"""``lmassist docs`` through the real command line (subprocesses), on real files in a temporary
folder and an index in the test's own LMASSIST_HOME (the autouse ``lmassist_home`` fixture)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

MINUTES = """\
# Council minutes

Held on Tuesday in the town hall.

## Budget

The treasurer could not attend.
Councillor David Okafor will bring the budget to the next meeting.

## Parks

Helen Park asked about the new playground.
"""

RECIPE = """\
Sourdough bread

Mix flour, water and the starter; leave it overnight.

Bake at 240 degrees for forty minutes.
"""

TRIP = """\
Lisbon trip
===========

Day one: Alfama and the castle.

Day two: Belem, the tower and pastries.
"""


def _line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _ok(*args: str) -> str:
    proc = run_cli("docs", *args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _listed(name: str) -> dict:
    entries = {c["name"]: c for c in json.loads(_ok("list", "--json"))}
    return entries[name]


def _cited_line(root: Path, citation: str, needle: str) -> None:
    """``path:line`` names a file under ``root`` whose passage starting at that line holds ``needle``."""
    rel, line = citation.rsplit(":", 1)
    lines = (root / rel).read_text(encoding="utf-8").splitlines()
    start = int(line)
    assert 1 <= start <= len(lines)
    assert any(needle in text for text in lines[start - 1:]), (citation, needle)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    (root / "meetings").mkdir(parents=True)
    (root / "meetings" / "minutes.md").write_text(MINUTES, encoding="utf-8")
    (root / "recipe.txt").write_text(RECIPE, encoding="utf-8")
    (root / "trip.md").write_text(TRIP, encoding="utf-8")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    return root


def test_add_list_search_update_remove(notes: Path) -> None:
    added = _ok("add", str(notes))
    assert added.startswith("notes: 3 added, 0 updated, 0 removed, 0 unchanged; 1 skipped (binary 1)")

    table = _ok("list")
    assert "notes" in table and str(notes) in table
    entry = _listed("notes")
    assert entry["root"] == str(notes.resolve()) and entry["files"] == 3 and entry["chunks"] >= 3

    # the right file, cited at the line where its passage starts
    found = _ok("search", "notes", "Who brings the budget?")
    first = next(line for line in found.splitlines() if ":" in line and not line.startswith(" ")
                 and "passage" not in line)
    citation = first.split()[0]
    assert citation.startswith("meetings/minutes.md:")
    assert "David Okafor will bring the budget" in found
    hits = json.loads(_ok("search", "notes", "Who brings the budget?", "--json", "-k", "2"))
    assert len(hits) <= 2
    top = hits[0]
    assert top["path"] == "meetings/minutes.md" and top["citation"] == citation
    assert top["start_line"] <= _line_of(notes / "meetings" / "minutes.md", "David Okafor") <= top["end_line"]
    assert top["start_line"] == _line_of(notes / "meetings" / "minutes.md", "## Budget")
    _cited_line(notes, citation, "David Okafor")
    trip = json.loads(_ok("search", "notes", "pastries in Belem", "--json"))[0]
    assert trip["path"] == "trip.md"
    assert trip["start_line"] <= _line_of(notes / "trip.md", "Belem") <= trip["end_line"]
    _cited_line(notes, trip["citation"], "Belem")
    assert "No passages in notes match" in _ok("search", "notes", "zeppelin")

    # edit one, delete one, add one
    (notes / "recipe.txt").write_text(RECIPE.replace("forty", "forty-five"), encoding="utf-8")
    (notes / "trip.md").unlink()
    (notes / "meetings" / "agenda.md").write_text("# Agenda\n\n1. The zeppelin landing strip\n", encoding="utf-8")
    updated = _ok("update")
    assert updated.startswith("notes: 1 added, 1 updated, 1 removed, 1 unchanged; 1 skipped (binary 1)"), updated
    assert _listed("notes")["files"] == 3
    hit = json.loads(_ok("search", "notes", "zeppelin", "--json"))[0]
    assert hit["citation"] == "meetings/agenda.md:1"
    assert json.loads(_ok("search", "notes", "Belem pastries", "--json")) == []

    # nothing changed: nothing read again
    again = _ok("update", "notes")
    assert again.startswith("notes: 0 added, 0 updated, 0 removed, 3 unchanged; 1 skipped (binary 1)"), again

    assert "Removed collection notes" in _ok("remove", "notes")
    assert json.loads(_ok("list", "--json")) == []
    assert "No collections yet" in _ok("list")
    assert notes.is_dir() and (notes / "recipe.txt").exists()  # the folder itself is not touched


def test_add_with_name_and_filters(notes: Path) -> None:
    out = _ok("add", str(notes), "--name", "md-only", "--include", "*.md", "--exclude", "meetings/*")
    assert out.startswith("md-only: 1 added"), out
    entry = _listed("md-only")
    assert entry["files"] == 1 and entry["include"] == ["*.md"] and entry["exclude"] == ["meetings/*"]
    assert [h["path"] for h in json.loads(_ok("search", "md-only", "Alfama castle", "--json"))] == ["trip.md"]


def test_update_with_no_collections_says_so() -> None:
    assert "No collections yet" in _ok("update")


def test_errors_are_one_line(notes: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("docs", "add", str(tmp_path / "missing")), "no such folder")
    assert_one_line_error(run_cli("docs", "add", str(notes / "recipe.txt")), "is not a folder")
    assert_one_line_error(run_cli("docs", "add", str(notes), "--name", "../etc"), "invalid collection name")
    spaced = tmp_path / "my notes"
    spaced.mkdir()
    assert_one_line_error(run_cli("docs", "add", str(spaced)), "invalid collection name", "--name")
    assert_one_line_error(run_cli("docs", "search", "nothing", "budget"), "no document collection named 'nothing'")
    _ok("add", str(notes))
    assert_one_line_error(run_cli("docs", "add", str(notes)), "exists already")
    for args in (("search", "nope", "budget"), ("update", "nope"), ("remove", "nope")):
        assert_one_line_error(run_cli("docs", *args), "no document collection named 'nope'", "collections: notes")
    assert_one_line_error(run_cli("docs", "remove", "a/b"), "invalid collection name")


def test_folder_gone(notes: Path) -> None:
    _ok("add", str(notes))
    moved = notes.with_name("moved")
    notes.rename(moved)
    assert_one_line_error(run_cli("docs", "update"), "is gone", "lmassist docs remove notes")
    assert_one_line_error(run_cli("docs", "update", "notes"), "is gone")
    moved.rename(notes)
    assert _ok("update").startswith("notes: 0 added")


def test_corrupted_index_then_rebuild(notes: Path, lmassist_home: Path) -> None:
    _ok("add", str(notes))
    db = lmassist_home / "data" / "docs.db"
    assert db.exists()
    os.truncate(db, db.stat().st_size // 2)
    for args in (("list",), ("search", "notes", "budget"), ("update",), ("update", "notes")):
        assert_one_line_error(run_cli("docs", *args), "damaged", "lmassist docs update --rebuild")
    rebuilt = run_cli("docs", "update", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr and "damaged" in rebuilt.stderr
    assert rebuilt.stdout.startswith("notes: 3 added, 0 updated, 0 removed, 0 unchanged; 1 skipped (binary 1)")
    assert _listed("notes")["files"] == 3
    hit = json.loads(_ok("search", "notes", "Who brings the budget?", "--json"))[0]
    assert hit["path"] == "meetings/minutes.md"
    # on a sound index --rebuild re-reads every file in place
    again = _ok("update", "--rebuild")
    assert again.startswith("notes: 0 added, 3 updated, 0 removed, 0 unchanged"), again


def test_help_lists_docs_with_examples() -> None:
    top = run_cli("--help")
    assert top.returncode == 0 and "  docs " in top.stdout
    out = _ok("--help")
    for sub in ("add", "list", "update", "remove", "search"):
        assert sub in out
    assert "lmassist docs add ~/notes" in out


# -- qa --docs: answers from an indexed folder with path:line citations (the real default model) -----


def test_qa_docs_answers_with_the_line_of_the_answer(notes: Path, default_gguf) -> None:
    _ok("add", str(notes))
    proc = run_cli("qa", "--docs", "notes", "Who brings the budget?", timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer, _, sources = proc.stdout.strip().partition("\n\nSources: ")
    assert "Okafor" in answer
    first = sources.split(", ")[0]
    assert first == f"meetings/minutes.md:{_line_of(notes / 'meetings' / 'minutes.md', 'will bring the budget')}"

    data = json.loads(run_cli("qa", "--docs", "notes", "Who brings the budget?", "--json", timeout=300).stdout)
    assert data["collection"] == "notes" and data["answerable"] is True and "Okafor" in data["answer"]
    cited = data["citations"][0]
    assert cited["path"] == "meetings/minutes.md" and "Okafor" in cited["text"]
    assert any(p["path"] == "meetings/minutes.md" for p in data["passages"])


def test_qa_docs_abstains_when_the_notes_do_not_say(notes: Path, default_gguf) -> None:
    _ok("add", str(notes))
    # a name no note mentions: the same rule as qa --context, across the folder
    proc = run_cli("qa", "--docs", "notes", "Who brings the budget to the Brighton meeting?", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "The notes do not contain the answer."
    data = json.loads(run_cli("qa", "--docs", "notes", "What colour is the zeppelin?", "--json", timeout=300).stdout)
    assert data["answerable"] is False and data["citations"] == []


def test_qa_docs_bad_input_is_one_line(notes: Path) -> None:
    _ok("add", str(notes))
    assert_one_line_error(run_cli("qa", "--docs", "notes", "--context", str(notes / "trip.md"), "Who?"),
                          "--context", "--docs", "not both")
    assert_one_line_error(run_cli("qa", "--docs", "nope", "Who?"), "no document collection named 'nope'", "notes")
