"""The memo of finished work: append-only, survives SIGKILL, a torn last line ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lmassist.jobs.memo import Memo, digest, memo_path, open_memo


def test_put_get_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "m" / "a.jsonl"
    memo = Memo(path)
    assert memo.get("k1") is None
    memo.put("k1", "un")
    memo.put("k2", "deux\nlignes")
    memo.close()
    again = Memo(path)
    assert again.get("k1") == "un" and again.get("k2") == "deux\nlignes"
    assert len(again) == 2
    again.remove()
    assert not path.exists()


def test_torn_last_line_is_ignored_and_cut_before_the_next_put(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    memo = Memo(path)
    memo.put("a", "1")
    memo.close()
    with open(path, "a") as f:
        f.write('{"k": "b", "v": "hal')  # a writer killed mid-line
    memo = Memo(path)
    assert memo.get("a") == "1" and memo.get("b") is None
    memo.put("c", "3")
    memo.close()
    assert Memo(path).get("c") == "3"
    assert path.read_text().count("\n") == 2


def test_memo_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "kill.jsonl"
    code = (
        "import sys, time\n"
        "from lmassist.jobs.memo import Memo\n"
        "m = Memo(sys.argv[1])\n"
        "i = 0\n"
        "while True:\n"
        "    m.put(f'k{i}', 'x' * 1000)\n"
        "    i += 1\n"
        "    if i == 50: print('ready', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    memo = Memo(path)
    n = len(memo)
    assert n >= 50
    assert all(memo.get(f"k{i}") == "x" * 1000 for i in range(n))


def test_memo_path_depends_on_input_model_and_options(tmp_path: Path) -> None:
    base = memo_path(tmp_path, "h1", "smollm", {"to": "fr"})
    assert base == memo_path(tmp_path, "h1", "smollm", {"to": "fr"})
    assert base != memo_path(tmp_path, "h2", "smollm", {"to": "fr"})
    assert base != memo_path(tmp_path, "h1", "gemma", {"to": "fr"})
    assert base != memo_path(tmp_path, "h1", "smollm", {"to": "de"})
    assert digest("a", "b") != digest("ab")
    memo = open_memo(tmp_path, "h1", "smollm", {"to": "fr"})
    memo.put("x", "y")
    memo.close()
    assert base.exists()


def test_compact_keeps_the_last_value_of_each_key(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    memo = Memo(path)
    for run in range(60):
        for key in ("a.md", "b.md", "c.md"):
            memo.put(key, f"run {run}")
    memo.close()
    again = Memo(path)
    again.compact()
    assert path.read_text().count("\n") == 3
    assert Memo(path).get("b.md") == "run 59"
    small = Memo(tmp_path / "small.jsonl")
    small.put("k", "1")
    small.put("k", "2")
    small.compact()  # a few outdated lines are not worth a rewrite
    assert (tmp_path / "small.jsonl").read_text().count("\n") == 2
