"""Stopping a run keeps finished work: real CLI subprocesses on the real default model, sent SIGINT,
SIGTERM or SIGKILL mid-run, then run again — finished files are skipped, the finished chunks of the
file in progress are reused, and the result is the same as a run never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli

# translate runs the default model in these tests: they test the job, not the translation, and the
# model the task would choose (Gemma-3-270M) is not installed everywhere the suite runs.
SMALL = ("-m", "llamacpp:smollm2-135m-instruct")

# Short sentences, one paragraph each: every paragraph is one chunk (one request) of translate.
PARAGRAPHS = ["Good morning.", "The weather is nice today.", "We go to the market.", "The bread is fresh.",
              "My sister likes apples."]
FILES = {f"doc{i}.md": "\n\n".join(PARAGRAPHS[i:] + PARAGRAPHS[:i]) + "\n" for i in range(3)}


@pytest.fixture(autouse=True)
def one_thread(lmassist_home: Path) -> None:
    (lmassist_home / "config").mkdir(parents=True, exist_ok=True)
    (lmassist_home / "config" / "settings.json").write_text('{"llamacpp.threads": 1}')


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lmassist", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 400) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        assert proc.poll() is None, f"the run ended before the test could stop it: {proc.stderr.read()}"
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run made no progress in time")


def lines_of(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:  # removed as we looked: its output was just written
        return 0


def memo_lines(folder: Path) -> int:
    return sum(lines_of(p) for p in folder.glob("*.jsonl")) if folder.exists() else 0


def manifest_keys(out: Path) -> set[str]:
    path = out / ".lmassist" / "manifest.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["k"] for line in path.read_text().splitlines() if line.endswith("}")}


def make_docs(root: Path) -> Path:
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_folder_job_stopped_mid_file_resumes_without_redoing_work(how: int, tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    out = tmp_path / "fr"
    args = ("translate", *SMALL, str(docs), "--to", "fr", "--out", str(out))
    proc = start(*args)
    memos = out / ".lmassist" / "memo"
    # stop it in the second file, after some but not all of its chunks are finished (a memo with
    # every chunk is the first file's, in the moment between its output and the memo's removal)
    wait_for(proc, lambda: len(manifest_keys(out)) >= 1 and any(
        0 < lines_of(p) < len(PARAGRAPHS) for p in memos.glob("*.jsonl")))
    proc.send_signal(how)
    _, err = proc.communicate(timeout=120)
    finished = manifest_keys(out)
    kept = memo_lines(memos)
    assert 1 <= len(finished) < 3 and kept >= 1
    if how == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "run the same command again to continue" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    for name in finished:  # every recorded output is whole: it was written atomically
        assert (out / name).read_text().count("\n\n") == len(PARAGRAPHS) - 1
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".part"))]

    again = run_cli(*args, timeout=600)
    assert again.returncode == 0, again.stderr
    summary = [ln for ln in again.stderr.splitlines() if ln.startswith("translate: ") and " done, " in ln][-1]
    assert f"{3 - len(finished)} done, {len(finished)} up to date, 0 failed" in summary
    assert f"{kept} finished chunks reused" in summary
    assert manifest_keys(out) == set(FILES) and memo_lines(memos) == 0
    # the resumed file is what a run never stopped writes
    resumed = sorted(set(FILES) - finished)[0]
    fresh = run_cli("translate", *SMALL, str(docs / resumed), "--to", "fr", timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    assert (out / resumed).read_text() == fresh.stdout


def test_a_single_file_run_stopped_by_sigterm_keeps_its_finished_chunks(tmp_path: Path, lmassist_home: Path) -> None:
    source = tmp_path / "inputs" / "doc.md"
    source.parent.mkdir()
    source.write_text(FILES["doc0.md"])
    memos = lmassist_home / "cache" / "memo"
    proc = start("translate", *SMALL, str(source), "--to", "fr")
    wait_for(proc, lambda: memo_lines(memos) >= 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    kept = memo_lines(memos)
    assert f"Interrupted: {kept} finished pieces are kept; run the same command again" in err
    assert out == ""  # no half translation passed off as the result

    again = run_cli("translate", *SMALL, str(source), "--to", "fr", timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"Resumed: {kept} finished pieces reused" in again.stderr
    assert again.stdout.count("\n\n") == len(PARAGRAPHS) - 1
    assert not list(memos.glob("*.jsonl"))  # the memo goes once its output is complete
    assert os.listdir(source.parent) == ["doc.md"]  # nothing written beside the input
