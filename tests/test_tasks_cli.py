"""The task commands through the real CLI in a subprocess: stdin, files, -o, --json, bad input, plugins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import plugin_env, run_cli

PLUGIN = textwrap.dedent('''
    from lmassist import hookimpl
    from lmassist.tasks.base import Param, Task, TaskResult


    class Shout(Task):
        name = "shout"
        summary = "Repeat the words in capitals (a third-party test task)."
        params = (Param("words", "argument", multiple=True),)
        json_schema = {"type": "object"}
        needs_model = False

        def run(self, model, values, progress=None, cancel=None):
            text = " ".join(values["words"]).upper()
            return TaskResult(text=text, data={"task": "shout", "text": text})


    @hookimpl
    def register_tasks(register):
        register(Shout())
''')


@pytest.fixture(autouse=True)
def one_thread(lmassist_home: Path) -> None:
    """llama.cpp on one thread: on a shared 2-core machine two threads wait on each other (8x slower)."""
    (lmassist_home / "config").mkdir(parents=True, exist_ok=True)
    (lmassist_home / "config" / "settings.json").write_text('{"llamacpp.threads": 1}')


def one_line_error(result, needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert needle in lines[0], lines[0]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    ok = tmp_path / "ok.md"
    ok.write_text("Hello.\n")
    one_line_error(run_cli("summarize", str(tmp_path / "missing.txt")), "no such file")
    one_line_error(run_cli("summarize", str(folder)), "no input files in")  # a folder is a job: empty
    one_line_error(run_cli("translate", str(binary), "--to", "fr"), "binary")
    one_line_error(run_cli("sentiment", str(latin)), "--encoding")
    one_line_error(run_cli("summarize", str(empty)), "is empty")
    one_line_error(run_cli("summarize", "-", input=""), "is empty")
    one_line_error(run_cli("translate", str(ok), "--to", "klingon"), "choose one of: ar (Arabic)")
    one_line_error(run_cli("sentiment", "--text", " "), "--text is empty")
    one_line_error(run_cli("qa"), "give a question")
    one_line_error(run_cli("qa", "Who?", "--context", str(folder)), "is a folder")
    one_line_error(run_cli("sentiment", "--encoding", "nope", str(latin)), "unknown encoding")
    one_line_error(run_cli("tasks", "--schema", "nope"), "unknown task")


def test_sentiment_per_line_json_from_a_latin1_file(tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.txt"
    reviews.write_bytes("a wonderful , moving film , tr\xe8s beau .\n\nan ugly , boring mess .\n".encode("latin-1"))
    r = run_cli("sentiment", str(reviews), "--per-line", "--json", "--encoding", "latin-1")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["task"] == "sentiment" and data["method"] == "score" and data["labels"] == ["positive", "negative"]
    assert data["calibration"] == "held-out"
    assert [x["line"] for x in data["results"]] == [1, 3]
    assert [x["label"] for x in data["results"]] == ["positive", "negative"]
    for row in data["results"]:
        assert set(row) >= {"source", "line", "text", "label", "confidence", "scores"}
        assert 0.5 <= row["confidence"] <= 1
    assert "très" in data["results"][0]["text"]


def test_summarize_stdin_json_to_output_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "summary.json"
    text = "The council met on Monday. It approved a new library for the town.\n\nWork starts in May."
    r = run_cli("summarize", "-", "--length", "short", "--json", "-o", str(out), input=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    data = json.loads(out.read_text())
    assert data["task"] == "summarize" and data["length"] == "short" and data["mode"] == "extractive"
    (s,) = data["summaries"]
    assert s["source"] == "stdin" and s["summary"] and s["input_tokens"] > 10 and len(s["chunks"]) == 1
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temporary file


def test_translate_file_keeps_code_fence_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "doc.md"
    fence = "```sh\n$ echo 'Good morning'   # keep me\n```\n"
    src.write_text("# Hello\n\nGood morning.\n\n" + fence)
    out = tmp_path / "doc.fr.md"
    r = run_cli("translate", "-m", "llamacpp:smollm2-135m-instruct", str(src), "--to", "French", "-o", str(out))
    assert r.returncode == 0, r.stderr
    result = out.read_text()
    assert result.startswith("# ") and result.endswith(fence)


def test_qa_with_context_json(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("Alice will bring the budget to the meeting. Bob will take notes. The meeting is on Monday.\n")
    r = run_cli("qa", "When", "is", "the", "meeting?", "--context", str(note), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) >= {"task", "model", "question", "answer", "answerable", "method", "passages"}
    assert data["question"] == "When is the meeting?" and data["method"] == "spans"
    assert data["passages"][0]["source"] == str(note)


def test_tasks_lists_builtins_and_schemas() -> None:
    r = run_cli("tasks", "--json")
    assert r.returncode == 0, r.stderr
    rows = {t["name"]: t for t in json.loads(r.stdout)}
    assert {"summarize", "translate", "sentiment", "qa"} <= set(rows)
    assert rows["summarize"]["builtin"] and rows["summarize"]["slash_usage"].startswith("/summarize")
    r = run_cli("tasks", "--schema", "sentiment")
    assert json.loads(r.stdout)["properties"]["task"] == {"const": "sentiment"}


def test_plugin_task_appears_in_tasks_and_as_a_command(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "lmassist-shout", PLUGIN)
    r = run_cli("tasks", env=env)
    assert r.returncode == 0, r.stderr
    assert "shout" in r.stdout and "plugin lmassist-shout" in r.stdout
    assert "shout" in run_cli("--help", env=env).stdout
    r = run_cli("shout", "hello", "world", env=env)
    assert r.returncode == 0 and r.stdout == "HELLO WORLD\n", r.stderr
    r = run_cli("shout", "hi", "--json", env=env)
    assert json.loads(r.stdout) == {"task": "shout", "text": "HI"}


DUCK_PLUGIN = textwrap.dedent('''
    from lmassist import hookimpl
    from lmassist.tasks.base import Param, TaskResult


    class Echo:
        """Not a Task subclass: a declaration and run(), which is all the contract asks."""

        name = "echo-words"
        summary = "Print the words back (a duck-typed test task)."
        params = (Param("words", "argument", multiple=True),)
        needs_model = False

        def run(self, model, values, progress=None, cancel=None):
            return TaskResult(text=" ".join(values["words"]))


    class Mute:
        name = "mute"


    @hookimpl
    def register_tasks(register):
        register(Echo())
        register(Mute())
''')


def test_a_plugin_task_is_checked_at_registration_and_a_good_one_runs_from_the_cli(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "lmassist-duck", DUCK_PLUGIN)
    r = run_cli("tasks", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {t["name"]: t for t in json.loads(r.stdout)}
    assert "mute" not in rows
    assert rows["echo-words"] == {"name": "echo-words", "summary": "Print the words back (a duck-typed test task).",
                                  "plugin": "lmassist-duck", "builtin": False, "slash_usage": "/echo-words WORDS..."}
    assert r.stderr.splitlines() == [
        "Warning: plugin lmassist-duck raised in register_tasks: TypeError: task 'mute' offers no way to run: "
        "subclass lmassist.tasks.base.Task, or give it run_slash(), run() or command()"]
    r = run_cli("echo-words", "hello", "world", env=env)
    assert r.returncode == 0 and r.stdout == "hello world\n", r.stderr
    assert "echo-words" in run_cli("--help", env=env).stdout.split("Tasks:")[1].split("\n\n")[0]
