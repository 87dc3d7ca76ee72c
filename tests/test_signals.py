"""Nothing lost in a conversation, whatever stops a turn (issue 14, items 6-9, 14, 15).

Real subprocesses of the CLI on the real default model, real signals sent after the reply has
started to stream, the real SQLite history read back; the chat app quit mid-reply runs in a child
process, so that a native crash (the bug this guards against) fails this test and not the session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

from lmassist.conversation import conversation_context
from lmassist.store import Store

LONG = ["-O", "max_new_tokens", "2000", "-O", "temperature", "0",
        "Write a very long story about a lighthouse keeper, with many chapters."]


def history(home: Path) -> Store:
    return Store(home / "data" / "history.db")


def start_ask(*args: str, stdin: int = subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lmassist", "ask", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, env=os.environ.copy(),
    )


def wait_for_user_row(home: Path, timeout: float = 120) -> None:
    """Until the question is saved: the model is loaded and is about to read the prompt."""
    db = home / "data" / "history.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                if sqlite3.connect(db).execute("select count(*) from messages where role='user'").fetchone()[0]:
                    return
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    raise AssertionError("the question was never saved")


@pytest.mark.parametrize("signum, status", [
    (signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129),
])
def test_a_signal_mid_reply_keeps_the_partial_reply(default_gguf, lmassist_home, signum, status):
    proc = start_ask(*LONG)
    first = proc.stdout.read(46)  # the reply is streaming: some of it is on the user's screen
    assert first
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"Traceback" not in err
    assert b"kept in history" in err
    shown = (first + out).decode("utf-8", "replace").strip()
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
        reply = messages[1]
        assert reply.content.strip() and shown.startswith(reply.content.strip()[:40])
        assert reply.stats["stop_reason"] == "cancelled"
        assert reply.model == "llamacpp:smollm2-135m-instruct"
    # The next turn goes on from a question and its (partial) answer, not two questions in a row.
    proc = run_cli("ask", "-c", "-O", "max_new_tokens", "4", "-O", "temperature", "0", "Go on.")
    assert proc.returncode == 0, proc.stderr
    with history(lmassist_home) as store:
        roles = [m.role for m in store.messages(conv.id)]
        assert roles == ["user", "assistant", "user", "assistant"]


def test_a_streaming_reply_is_saved_every_second(default_gguf, lmassist_home):
    """Even SIGKILL, which nothing can catch, loses at most the last second of a reply."""
    proc = start_ask(*LONG)
    assert proc.stdout.read(20)
    time.sleep(2.5)
    proc.kill()
    proc.communicate(timeout=30)
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].status == "pending" and messages[1].content.strip()
        # A reply cut short this way is still a reply: the next turn's context has both.
        assert [m.role for m in conversation_context(messages)] == ["user", "assistant"]


def test_a_second_ctrl_c_exits_at_once_even_while_the_prompt_is_read(default_gguf, lmassist_home, tmp_path):
    """Prompt evaluation of ~1,700 tokens takes many seconds on a loaded machine; the main thread
    stays free to act on signals, so the second Ctrl+C leaves at once and the question is kept."""
    text = tmp_path / "long.txt"
    text.write_text("The quick brown fox jumps over the lazy dog near the river bank. " * 120)
    with open(text, "rb") as stdin:
        proc = start_ask("-O", "max_new_tokens", "50", "Summarize this.", stdin=stdin.fileno())
    wait_for_user_row(lmassist_home)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    # The first Ctrl+C may already have ended the turn (prompts are read in short batches) and the
    # second then lands while Python shuts down with its default handler: killed by SIGINT, which a
    # shell reports as 130 too.
    assert proc.returncode in (130, -signal.SIGINT), err
    assert took < 3, f"the second Ctrl+C took {took:.1f} s to act"
    assert b"Traceback" not in err and b"Interrupted" in err
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        assert [m.role for m in store.messages(conv.id)] == ["user"]


def test_one_ctrl_c_stops_while_the_prompt_is_read(default_gguf, lmassist_home, tmp_path):
    """Item 9: the signal sets the cancel token at once (the main thread is free) and llama.cpp
    checks it between prompt batches, so the turn ends before a single token is generated."""
    text = tmp_path / "long.txt"
    text.write_text("The quick brown fox jumps over the lazy dog near the river bank. " * 120)
    with open(text, "rb") as stdin:
        proc = start_ask("-O", "max_new_tokens", "50", "Summarize this.", stdin=stdin.fileno())
    wait_for_user_row(lmassist_home)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < 10, f"one Ctrl+C took {took:.1f} s to act"
    assert out == b"" and b"Traceback" not in err
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        assert [m.role for m in store.messages(conv.id)] == ["user"]  # kept; no reply was begun


def test_a_failed_over_long_turn_does_not_erase_the_context(default_gguf, lmassist_home):
    short = ["-O", "max_new_tokens", "8", "-O", "temperature", "0"]
    assert run_cli("ask", *short, "My name is Ada. Say hi.").returncode == 0
    fresh = run_cli("ask", "--no-log", "--json", *short, "What is my name?")
    alone = json.loads(fresh.stdout)["stats"]["prompt_tokens"]

    failed = run_cli("ask", "-c", *short, "Summarize:", input="lorem ipsum dolor " * 3000)
    assert_one_line_error(failed, "tokens")
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [
            ("user", "complete"), ("assistant", "complete"), ("user", "error")]  # kept, marked

    later = run_cli("ask", "-c", "--json", *short, "What is my name?")
    assert later.returncode == 0, later.stderr
    stats = json.loads(later.stdout)["stats"]
    assert stats["prompt_tokens"] > alone + 10  # the first exchange is still in the context
    with history(lmassist_home) as store:
        context = conversation_context(store.messages(conv.id))
        assert [m.role for m in context] == ["user", "assistant", "user", "assistant"]
        assert "Ada" in context[0].content


def test_a_failed_first_question_leaves_no_conversation(default_gguf, lmassist_home):
    failed = run_cli("ask", "Summarize:", input="lorem ipsum dolor " * 3000)
    assert_one_line_error(failed, "tokens")
    with history(lmassist_home) as store:
        assert store.conversations() == []


def test_parallel_continues_take_turns(default_gguf, lmassist_home):
    """Four `ask -c` at once on one conversation: each question is followed by its own answer."""
    short = ["-O", "max_new_tokens", "6", "-O", "temperature", "0"]
    assert run_cli("ask", *short, "Count with me.").returncode == 0
    # The first holds the conversation for a long reply; the three started meanwhile must wait.
    first = start_ask("-c", "-O", "max_new_tokens", "300", *LONG[3:])
    db = lmassist_home / "data" / "history.db"
    deadline = time.monotonic() + 120
    while sqlite3.connect(db).execute("select count(*) from messages where role='user'").fetchone()[0] < 2:
        assert time.monotonic() < deadline and first.poll() is None, "the first ask never started its turn"
        time.sleep(0.05)
    procs = [first] + [start_ask("-c", *short, f"Question {i}?") for i in range(1, 4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    waited = sum(b"Waiting for another lmassist" in err for _, err in results[1:])
    assert waited == 3  # they did overlap, and said so
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        roles = [m.role for m in messages]
        assert roles == ["user", "assistant"] * 5, roles
        asked = [m.content for m in messages[2::2]]
        assert asked[0] == LONG[-1] and sorted(asked[1:]) == [f"Question {i}?" for i in range(1, 4)]
        folder = store.path.parent / f"{store.path.name}.turns"
        assert not list(folder.iterdir())  # no lock file left behind


def test_options_are_checked_before_the_model_loads(lmassist_home):
    # An unknown model would be the first error if the model were loaded first.
    assert_one_line_error(run_cli("ask", "-m", "llamacpp:nope", "-O", "temperature", "hot", "hi"), "temperature")
    assert_one_line_error(run_cli("chat", "-m", "llamacpp:nope", "-O", "top_p", "2"), "top_p")


QUIT_MID_REPLY = """
import asyncio, time
from lmassist.store import Store
from lmassist.tui.app import LMAssistApp

async def main() -> None:
    app = LMAssistApp(store=Store())  # the app owns its models: it loads and frees the default one
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.chat
        deadline = time.monotonic() + 180
        while not chat.model_ready:
            assert time.monotonic() < deadline, "the model did not load"
            await pilot.pause(0.05)
        chat.session.set_settings({"options": {"max_new_tokens": 2000, "temperature": 0.8, "seed": 3}})
        chat.chat_input.text = "Write a very long story about a dragon, with many chapters."
        await pilot.press("enter")
        while not (len(chat.views()) == 2 and len(chat.views()[1].source.split()) >= 3):
            assert time.monotonic() < deadline, "the reply did not stream"
            await pilot.pause(0.05)
        print("STREAMING", flush=True)
        await pilot.press("ctrl+q")
        while app.is_running:
            await pilot.pause(0.05)
    print("QUIT", flush=True)

asyncio.run(main())
"""


def test_quitting_the_app_mid_reply_stops_the_reply_first(default_gguf, lmassist_home, tmp_path):
    """Ctrl+Q while a reply streams: the app waits for the reply thread before freeing the model
    (it crashed with SIGSEGV, exit 139), and the partial reply is saved as interrupted."""
    script = tmp_path / "quit_mid_reply.py"
    script.write_text(textwrap.dedent(QUIT_MID_REPLY))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["STREAMING", "QUIT"]
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
        assert messages[1].content.strip() and messages[1].stats["stop_reason"] == "cancelled"


def test_line_chat_keeps_a_reply_stopped_by_sigterm(default_gguf, lmassist_home):
    """`lmassist chat` (the line chat) holds and saves each turn as `ask` does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmassist", "chat", *LONG[:6]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE, env=os.environ.copy(),
    )
    proc.stdin.write(LONG[6].encode() + b"\n")
    proc.stdin.flush()
    assert proc.stdout.read(60)  # the prompt "> " and the start of the reply
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    with history(lmassist_home) as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
        assert messages[1].content.strip()
