"""End to end: the real ``lmassist`` in a real terminal (tmux), driven by keys, read from the screen.

Sends a message and waits for the reply, cancels a long reply with Esc, quits with Ctrl+Q, then
checks the history database the app left behind. Needs tmux (``apt-get install -y tmux``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lmassist.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install -y tmux)"),
]


class Terminal:
    """A 110x34 tmux session on its own server socket, so no other tmux is touched."""

    def __init__(self, socket: str, command: str) -> None:
        self.base = ["tmux", "-L", socket]
        subprocess.run([*self.base, "new-session", "-d", "-s", "e2e", "-x", "110", "-y", "34", command], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "e2e", *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "e2e", "-l", text], check=True)

    def screen(self) -> str:
        out = subprocess.run([*self.base, "capture-pane", "-p", "-t", "e2e"], capture_output=True, text=True)
        return out.stdout

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", "e2e"], capture_output=True).returncode == 0

    def wait(self, condition: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if condition(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def status_line(screen: str) -> str:
    lines = [line for line in screen.splitlines() if "llamacpp:" in line and " · " in line and "cpu" in line]
    return lines[-1] if lines else ""


@pytest.fixture
def terminal(lmassist_home: Path, default_gguf: Path) -> Iterator[Callable[[], Terminal]]:
    # One llama.cpp thread: on a shared, oversubscribed CI machine two threads spin-wait on each
    # other and a reply can take minutes. Users get the backend's default.
    (lmassist_home / "config").mkdir(parents=True, exist_ok=True)
    (lmassist_home / "config" / "settings.json").write_text(json.dumps({"llamacpp.threads": 1}))
    env = {"LMASSIST_HOME": str(lmassist_home), "LMASSIST_MODELS_DIR": os.environ["LMASSIST_MODELS_DIR"],
           "TERM": "xterm-256color", "LMASSIST_LOAD_PLUGINS": ""}
    command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command += f" {shlex.quote(sys.executable)} -m lmassist"
    made: list[Terminal] = []

    def start(status: Path | None = None) -> Terminal:
        """With ``status``, the app's exit status is written there when it ends."""
        full = command if status is None else f"sh -c {shlex.quote(f'{command}; echo $? > {shlex.quote(str(status))}')}"
        made.append(Terminal(f"lmassist-e2e-{os.getpid()}-{len(made)}", full))
        return made[-1]

    yield start
    for t in made:
        t.kill()


def test_chat_cancel_quit_and_history(terminal: Callable[[], Terminal], lmassist_home: Path) -> None:
    term = terminal()
    term.wait(lambda s: "Type a message" in s, 20, "the first frame")
    term.wait(lambda s: " idle" in status_line(s), 60, "the model to load")

    term.type("/set max_new_tokens 24")
    term.keys("Enter")
    term.wait(lambda s: "max_new_tokens" in s and "for this chat" in s, 10, "/set")
    term.type("What is the capital of France?")
    term.keys("Enter")
    term.wait(lambda s: "assistant · llamacpp:smollm2-135m-instruct" in s, 30, "the reply to start")
    shown = term.wait(lambda s: " idle" in status_line(s) and "tok/s" in status_line(s), 60, "the reply to end")
    assert "What is the capital of France?" in shown

    term.type("/set max_new_tokens 2000")
    term.keys("Enter")
    time.sleep(0.3)
    term.type("Write a very long story about a dragon and a knight, with ten chapters.")
    term.keys("Enter")
    term.wait(lambda s: "generating" in status_line(s), 30, "generation")
    time.sleep(1.5)  # let some of it stream
    term.keys("Escape")
    shown = term.wait(lambda s: "interrupted" in s and " idle" in status_line(s), 30, "the cancel")

    term.keys("C-q")
    deadline = time.monotonic() + 20
    while term.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not term.alive(), "the app did not quit on Ctrl+Q"

    with Store(lmassist_home / "data" / "history.db") as store:
        conversations = store.conversations()
        assert len(conversations) == 1
        conv = conversations[0]
        assert conv.title == "What is the capital of France?"
        assert conv.settings["options"]["max_new_tokens"] == 2000
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [
            ("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "interrupted"),
        ]
        assert "Paris" in messages[1].content or messages[1].content.strip()
        assert messages[3].content.strip() and messages[3].stats["stop_reason"] == "cancelled"
        assert messages[3].model == "llamacpp:smollm2-135m-instruct"


def app_pid(term: Terminal) -> int:
    """The app's process: the child of the shell that runs it in the pane."""
    out = subprocess.run([*term.base, "list-panes", "-t", "e2e", "-F", "#{pane_pid}"], capture_output=True, text=True)
    shell = out.stdout.split()[0]
    children = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
    return int(children[0])


def wait_status(path: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError("the app did not exit")


@pytest.mark.parametrize("how, status", [("ctrl+q", 0), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_quit_mid_reply_keeps_it_and_exits_cleanly(
    terminal: Callable[..., Terminal], lmassist_home: Path, tmp_path: Path, how: str, status: int
) -> None:
    """Quitting while a reply streams crashed the app (SIGSEGV, exit 139): the model was freed
    under the thread still generating with it. Now the reply stops first and is kept."""
    status_file = tmp_path / "status"
    term = terminal(status_file)
    term.wait(lambda s: " idle" in status_line(s), 60, "the model to load")
    term.type("/set max_new_tokens 2000")
    term.keys("Enter")
    time.sleep(0.3)
    term.type("Write a very long story about a dragon and a knight, with ten chapters.")
    term.keys("Enter")
    term.wait(lambda s: "generating" in status_line(s), 30, "generation")
    time.sleep(1.5)  # let some of it stream
    if how == "ctrl+q":
        term.keys("C-q")
    else:
        os.kill(app_pid(term), getattr(signal, how))
    assert wait_status(status_file) == status
    with Store(lmassist_home / "data" / "history.db") as store:
        [conv] = store.conversations()
        messages = store.messages(conv.id)
        assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
        assert messages[1].content.strip() and messages[1].stats["stop_reason"] == "cancelled"
