"""``ask -f``, ``chat -f``, ``ask -t`` and ``ask --docs`` through real CLI subprocesses on the real
default model, with real files in tmp folders and the real history file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from test_attachments import make_files

ASK = ["ask", "-O", "temperature", "0", "-O", "max_new_tokens", "24"]
CODE = "The secret code word is PINEAPPLE-42.\n"  # make_files writes it to code.txt


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return make_files(tmp_path / "files")


def _rows(home: Path, sql: str) -> list[tuple]:
    db = home / "data" / "history.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_ask_f_shows_the_chip_answers_from_the_file_and_keeps_it_for_later_turns(default_gguf, lmassist_home, files):
    first = run_cli(*ASK, "--json", "-f", str(files / "code.txt"), "What is the secret code word?")
    assert first.returncode == 0, first.stderr
    assert f"Attached {files / 'code.txt'} · 38 B · ~10 tokens" in first.stderr
    out = json.loads(first.stdout)
    assert "PINEAPPLE-42" in out["reply"]
    assert out["attachments"][0]["name"] == str(files / "code.txt") and out["attachments"][0]["size"] == 38
    again = json.loads(run_cli(*ASK, "--json", "-c", "Say the secret code word again.").stdout)
    fresh = json.loads(run_cli(*ASK, "--json", "--no-log", "Say the secret code word again.").stdout)
    assert again["conversation_id"] == out["conversation_id"]
    assert [a["name"] for a in again["attachments"]] == [str(files / "code.txt")]  # not attached twice
    assert again["stats"]["prompt_tokens"] > fresh["stats"]["prompt_tokens"] + 10  # the file is shown again
    assert _rows(lmassist_home, "SELECT COUNT(*) FROM message_attachments") == [(1,)]
    shown = run_cli("history", "show", out["conversation_id"])
    assert "Attached " in shown.stdout and "code.txt · 38 B" in shown.stdout


def test_folders_globs_and_stdin(default_gguf, lmassist_home, files):
    proc = run_cli(*ASK, "--no-log", "-f", str(files / "notes"), "-f", str(files / "*.txt"), "-f", "-",
                   "Who brings the budget?", input="Minutes of the May meeting.\n")
    assert proc.returncode == 0, proc.stderr
    chips = [line for line in proc.stderr.splitlines() if line.startswith("Attached ")]
    assert [c.split(" · ")[0] for c in chips] == [
        f"Attached {files / 'notes' / 'budget.md'}", f"Attached {files / 'notes' / 'sub' / 'todo.txt'}",
        f"Attached {files / 'code.txt'}", "Attached stdin"]
    assert "(skipped 4 files: 1 binary, 1 empty, 1 hidden file, 1 not UTF-8)" in proc.stderr


def test_the_same_file_in_many_chats_is_stored_once_and_deleting_leaves_no_orphans(default_gguf, lmassist_home, files):
    cids = []
    for i in range(3):
        proc = run_cli("ask", "-O", "max_new_tokens", "1", "--json", "-f", str(files / "code.txt"), f"question {i}")
        assert proc.returncode == 0, proc.stderr
        cids.append(json.loads(proc.stdout)["conversation_id"])
    assert _rows(lmassist_home, "SELECT COUNT(*) FROM attachments") == [(1,)]
    assert _rows(lmassist_home, "SELECT COUNT(*) FROM message_attachments") == [(3,)]
    exported = run_cli("history", "export", cids[0], "--format", "json")
    data = json.loads(exported.stdout)
    assert data["attachments"][0]["text"] == CODE and len(data["attachments"][0]["sha256"]) == 64
    md = run_cli("history", "export", cids[0]).stdout
    assert "## Attachments" in md and CODE.strip() in md
    for cid in cids:
        assert run_cli("history", "delete", "--yes", cid).returncode == 0
    assert _rows(lmassist_home, "SELECT COUNT(*) FROM attachments") == [(0,)]


def test_attachments_too_big_for_the_context_use_retrieval_and_say_so(default_gguf, lmassist_home, tmp_path):
    minutes = tmp_path / "minutes.md"
    items = "\n\n".join(f"## Item {i}\n\nThe committee discussed routine matter number {i} and moved on."
                        for i in range(600))
    minutes.write_text(f"# Minutes\n\n{items}\n\n## Budget\n\nCouncillor David Okafor will bring the budget.\n")
    assert run_cli("settings", "set", "llamacpp.n_ctx", "1024").returncode == 0  # a short prompt to read on a busy CPU
    proc = run_cli(*ASK, "--json", "-f", str(minutes), "Who will bring the budget?")
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("Attachments:")]
    assert len(line) == 1 and "the context leaves" in line[0] and "passages that best match" in line[0]
    out = json.loads(proc.stdout)
    assert out["stats"]["prompt_tokens"] <= 1024 - 24
    assert out["reply"].strip()
    # the whole file is kept in the history, however little of it the model saw
    assert _rows(lmassist_home, "SELECT size FROM attachments") == [(minutes.stat().st_size,)]


@pytest.mark.parametrize(("args", "needle", "stdin"), [
    (["-f", "missing.md"], "no such file or folder: missing.md", None),
    (["-f", "{empty}"], "has no readable text files", None),
    (["-f", "{root}/*.docx"], "no files match", None),
    (["-f", "{root}/blob.bin"], "looks like a binary file", None),
    (["-f", "-"], "nothing was piped in", None),
    (["-f", "-"], "nothing was piped in", ""),
    (["-f", "{root}/code.txt", "--docs", "notes"], "-f attachments cannot be added", None),
    (["-t", "nosuchtemplate"], "nosuchtemplate", None),
    (["-f", "{root}/code.txt"], "nothing to ask about the attached files", None),
])
def test_bad_attachments_are_one_line_and_save_nothing(lmassist_home, files, args, needle, stdin):
    args = [a.format(root=files, empty=files / "empty") for a in args]
    prompt = [] if needle.startswith("nothing to ask") else ["question?"]
    proc = run_cli("ask", *args, *prompt, input=stdin)
    assert_one_line_error(proc, needle)
    assert proc.returncode == 1
    assert _rows(lmassist_home, "SELECT COUNT(*) FROM messages") in ([], [(0,)])


def test_chat_f_and_attach_command(default_gguf, lmassist_home, files):
    proc = run_cli("chat", "-O", "temperature", "0", "-O", "max_new_tokens", "16", "-f", str(files / "code.txt"),
                   input=f"What is the secret code word?\n/attach {files / 'nothing.md'}\n"
                         f"/attach {files / 'notes'}\nWho brings the budget?\nexit\n")
    assert proc.returncode == 0, proc.stderr
    assert f"Attached {files / 'code.txt'} · 38 B" in proc.stderr
    assert "Error: no such file or folder:" in proc.stderr  # the chat goes on
    assert f"Attached {files / 'notes' / 'budget.md'}" in proc.stderr
    rows = _rows(lmassist_home, "SELECT m.content, l.name FROM message_attachments l JOIN messages m ON m.id = l.message_id "
                                "ORDER BY l.message_id")
    assert rows == [("What is the secret code word?", str(files / "code.txt")),
                    ("Who brings the budget?", str(files / "notes" / "budget.md")),
                    ("Who brings the budget?", str(files / "notes" / "sub" / "todo.txt"))]
    assert_one_line_error(run_cli("chat", "-f", "-", input="x"), "-f - cannot attach")


def test_template_gives_system_options_and_files_and_flags_win(default_gguf, lmassist_home, files):
    made = run_cli("templates", "add", "coder", "-s", "You answer in one word.", "-O", "max_new_tokens", "3",
                   "-f", str(files / "code.txt"))
    assert made.returncode == 0, made.stderr
    used = json.loads(run_cli("ask", "--json", "-t", "coder", "What is the code word?").stdout)
    assert used["stats"]["generated_tokens"] <= 3
    assert [a["name"] for a in used["attachments"]] == [str(files / "code.txt")]
    rows = _rows(lmassist_home, "SELECT role, content FROM messages ORDER BY id")
    assert rows[0] == ("system", "You answer in one word.")
    flags = run_cli("ask", "--json", "-t", "coder", "-O", "max_new_tokens", "6", "-s", "Be brief.", "--no-log",
                    "-O", "temperature", "0", "Count from one to twenty.")
    out = json.loads(flags.stdout)
    assert 3 < out["stats"]["generated_tokens"] <= 6


def test_ask_docs_cites_and_abstains(default_gguf, lmassist_home, files):
    assert run_cli("docs", "add", str(files / "notes"), "--name", "notes").returncode == 0
    proc = run_cli(*ASK, "--docs", "notes", "Who will bring the budget?")
    assert proc.returncode == 0, proc.stderr
    answer, _, sources = proc.stdout.rpartition("\nSources:\n")
    assert answer.strip() and sources.splitlines()[0] == "budget.md:1"
    data = json.loads(run_cli(*ASK, "--json", "-c", "--docs", "notes", "Who will bring the budget?").stdout)
    assert data["citations"][0] == {"path": "budget.md", "line": 1, "end_line": 4} and not data["abstained"]
    shown = run_cli("history", "show", data["conversation_id"]).stdout
    assert "Sources:" in shown and "budget.md:1" in shown
    assert "- `budget.md:1`" in run_cli("history", "export", data["conversation_id"]).stdout
    no = json.loads(run_cli(*ASK, "--json", "--docs", "notes", "When is Priya Raman's birthday?").stdout)
    assert no["abstained"] and no["reply"] == "The notes do not contain the answer." and no["stats"] is None
    assert_one_line_error(run_cli(*ASK, "--docs", "nosuch", "q"), "nosuch")


def test_line_chat_commands_are_not_sent_to_the_model(default_gguf, lmassist_home):
    """/help lists the commands, a mistyped command is one line (not a message to the model), a path
    starting with / is still a message, and /quit leaves."""
    proc = run_cli("chat", "-O", "temperature", "0", "-O", "max_new_tokens", "4",
                   input="/help\n/atach notes.md\n/etc/hosts holds what?\n/quit\nnever read\n")
    assert proc.returncode == 0, proc.stderr
    assert "commands: /attach PATH" in proc.stderr
    assert "Error: unknown command /atach; commands:" in proc.stderr
    sent = _rows(lmassist_home, "SELECT content FROM messages WHERE role = 'user'")
    assert sent == [("/etc/hosts holds what?",)]  # nothing after /quit either
