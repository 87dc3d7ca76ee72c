"""The real ``lmassist`` command line in subprocesses: ask, history, models, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import assert_one_line_error, run_cli

ASK = ["ask", "-O", "temperature", "0", "-O", "max_new_tokens", "24"]


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from lmassist.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'textual', 'numpy', 'markdown_it') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "ask" in out.stdout and "models" in out.stdout


def test_ask_streams_an_answer_and_logs_it(default_gguf, lmassist_home):
    proc = run_cli(*ASK, "--json", "What is the capital of France?")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reply"].strip() and out["model"] == "llamacpp:smollm2-135m-instruct"
    assert out["stats"]["generated_tokens"] > 0 and out["stats"]["prompt_tokens"] > 0
    db = lmassist_home / "data" / "history.db"
    rows = sqlite3.connect(db).execute("select role, content, status from messages order by id").fetchall()
    assert [r[0] for r in rows] == ["user", "assistant"]
    assert rows[0][1] == "What is the capital of France?" and rows[1][1] == out["reply"]
    found = run_cli("history", "search", "capital")
    assert found.returncode == 0 and out["conversation_id"][:8] in found.stdout


def test_stdin_is_added_as_context(default_gguf):
    plain = json.loads(run_cli(*ASK, "--json", "--no-log", "Summarize this.").stdout)
    piped = json.loads(run_cli(*ASK, "--json", "--no-log", "Summarize this.",
                               input="The quick brown fox jumps over the lazy dog. " * 5).stdout)
    assert piped["stats"]["prompt_tokens"] > plain["stats"]["prompt_tokens"] + 40


def test_continue_carries_the_conversation(default_gguf):
    first = json.loads(run_cli(*ASK, "--json", "My name is Zorblax. Remember it.").stdout)
    again = json.loads(run_cli(*ASK, "--json", "-c", "What is my name?").stdout)
    fresh = json.loads(run_cli(*ASK, "--json", "--no-log", "What is my name?").stdout)
    assert again["conversation_id"] == first["conversation_id"]
    assert again["stats"]["prompt_tokens"] > fresh["stats"]["prompt_tokens"] + first["stats"]["generated_tokens"]
    by_cid = json.loads(run_cli(*ASK, "--json", "--cid", first["conversation_id"][:6], "And again?").stdout)
    assert by_cid["conversation_id"] == first["conversation_id"]


def test_stats_and_no_stream(default_gguf):
    proc = run_cli(*ASK, "--no-stream", "--stats", "--no-log", "Say hello.")
    assert proc.returncode == 0 and proc.stdout.strip()
    assert "tokens/s" in proc.stderr and "first token" in proc.stderr


def test_unknown_model_and_backend(default_gguf):
    assert_one_line_error(run_cli("ask", "-m", "nosuchmodel", "hi"), "unknown model 'nosuchmodel'")
    assert_one_line_error(run_cli("ask", "-m", "nobackend:foo", "hi"), "unknown backend 'nobackend'")


def test_corrupt_gguf_names_the_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(2000))
    assert_one_line_error(run_cli("ask", "-m", f"llamacpp:{bad}", "hi"), str(bad))
    notgguf = tmp_path / "notes.gguf"
    notgguf.write_text("hello")
    assert_one_line_error(run_cli("ask", "-m", f"llamacpp:{notgguf}", "hi"), "not a GGUF")
    assert_one_line_error(run_cli("models", "add", str(notgguf)), "not a GGUF")


def test_empty_prompt_and_empty_stdin():
    assert_one_line_error(run_cli("ask"), "nothing to ask")
    assert_one_line_error(run_cli("ask", input=""), "stdin was empty")
    assert_one_line_error(run_cli("ask", "   "), "nothing to ask")


def test_binary_stdin_is_refused():
    proc = subprocess.run([sys.executable, "-m", "lmassist", "ask", "what is this"],
                          input=b"\x00\x01\x02binary", capture_output=True, timeout=60)
    assert proc.returncode == 1 and b"binary" in proc.stderr and b"Traceback" not in proc.stderr


def test_prompt_longer_than_context(default_gguf):
    proc = run_cli("ask", "--no-log", "summarize", input="lorem ipsum dolor " * 6000)
    assert_one_line_error(proc, "tokens")


def test_bad_option_values():
    assert_one_line_error(run_cli("ask", "-O", "temperature", "hot", "hi"), "temperature")
    assert_one_line_error(run_cli("ask", "-O", "colour", "red", "hi"), "unknown option 'colour'")


def test_lowercase_o_is_output_everywhere_and_points_to_option():
    """`-o` means --output in every command; in `ask`/`chat` it names the flag that sets options."""
    proc = run_cli("ask", "-o", "temperature", "0", "hi")
    assert proc.returncode == 2 and "-O temperature 0" in proc.stderr and "Traceback" not in proc.stderr


def test_models_list_add_remove_default(default_gguf, tmp_path):
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    default = [m for m in listed if m["default"]]
    assert default and default[0]["name"] == "llamacpp:smollm2-135m-instruct" and default[0]["installed"]
    copy = tmp_path / "My-Model.gguf"
    copy.symlink_to(default_gguf)
    assert run_cli("models", "add", str(copy), "--name", "mine").returncode == 0
    assert "llamacpp:mine" in run_cli("models", "list").stdout
    assert run_cli("models", "default", "llamacpp:mine").returncode == 0
    assert run_cli("models", "default").stdout.strip() == "llamacpp:mine"
    assert run_cli("models", "remove", "mine").returncode == 0
    assert "llamacpp:mine" not in run_cli("models", "list").stdout
    assert copy.exists()  # removing a model added by path never deletes the user's file


def test_backends_lists_availability():
    rows = {r["name"]: r for r in json.loads(run_cli("backends", "--json").stdout)}
    assert rows["llamacpp"]["available"]


def test_ctrl_c_keeps_the_partial_reply(default_gguf, lmassist_home):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmassist", "ask", "-O", "max_new_tokens", "2000", "-O", "temperature", "0",
         "Write a very long story about a lighthouse keeper."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=os.environ.copy(),
    )
    first = proc.stdout.read(40)  # wait until the reply is streaming
    assert first
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"Interrupted" in err
    db = lmassist_home / "data" / "history.db"
    row = sqlite3.connect(db).execute("select content, status from messages where role='assistant'").fetchone()
    assert row[1] == "interrupted"
    assert row[0].startswith((first + out).decode("utf-8", "replace")[:30])


def test_version_and_python_m():
    proc = run_cli("--version")
    assert proc.returncode == 0 and "lmassist" in proc.stdout
    assert Path(sys.executable).exists()


def test_settings_round_trip():
    assert run_cli("settings", "set", "llamacpp.n_ctx", "2048").returncode == 0
    assert run_cli("settings", "get", "llamacpp.n_ctx").stdout.strip() == "2048"
    listed = run_cli("settings", "list").stdout
    assert '"llamacpp.n_ctx": 2048' in listed
    assert run_cli("settings", "unset", "llamacpp.n_ctx").returncode == 0
    assert run_cli("settings", "get", "llamacpp.n_ctx").stdout.strip() == "null"
