"""Folder jobs through the real CLI in subprocesses, on real files and the real default model:
mirrored --out trees, re-runs that skip what is up to date, failures that do not stop the run,
--files-from, --include/--exclude, --other, JSON Lines streams and --concurrency's refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

# translate runs the default model in these tests: they test the job, not the translation, and the
# model the task would choose (Gemma-3-270M) is not installed everywhere the suite runs.
SMALL = ("-m", "llamacpp:smollm2-135m-instruct")

NOTES = {
    "budget.md": "# Budget\n\nThe council approved the budget on Monday. Roads will be repaired first. "
                 "Parks come next, and the library gets new computers in the spring.\n",
    "2024/march.txt": "The team met in March. Ana will write the report. The launch moved to June "
                      "because the supplier was late.\n",
    "2024/april.md": "In April the new office opened. Everyone moved on a Friday. The coffee machine "
                     "broke on the first day, which nobody enjoyed.\n",
}


@pytest.fixture(autouse=True)
def one_thread(lmassist_home: Path) -> None:
    """llama.cpp on one thread: on a shared 2-core machine two threads wait on each other."""
    (lmassist_home / "config").mkdir(parents=True, exist_ok=True)
    (lmassist_home / "config" / "settings.json").write_text('{"llamacpp.threads": 1}')


def make_tree(root: Path, files: dict[str, str] = NOTES) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def closing_line(stderr: str, task: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith(f"{task}: ") and " done, " in ln]
    assert lines, stderr
    return lines[-1]


def test_summarize_folder_mirrors_the_tree_and_a_rerun_skips_what_is_up_to_date(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    (notes / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (notes / ".hidden.md").write_text("Not an input.\n")
    out = tmp_path / "summaries"
    r = run_cli("summarize", str(notes), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "3 done, 0 up to date, 0 failed, 1 other files skipped" in closing_line(r.stderr, "summarize")
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".lmassist" not in p.parts)
    assert written == ["2024/april.md", "2024/march.txt", "budget.md"]
    assert "budget" in (out / "budget.md").read_text().lower()
    manifest = [json.loads(line) for line in (out / ".lmassist" / "manifest.jsonl").read_text().splitlines()]
    record = json.loads(next(m["v"] for m in manifest if m["k"] == "budget.md"))
    assert set(record) == {"input", "model", "options", "version"} and "smollm" in record["model"]
    assert record["options"]["length"] == "medium"

    again = run_cli("summarize", str(notes), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 done, 3 up to date" in closing_line(again.stderr, "summarize")

    (notes / "budget.md").write_text(NOTES["budget.md"] + "The mayor thanked everyone.\n")
    changed = run_cli("summarize", str(notes), "--out", str(out))
    assert "1 done, 2 up to date" in closing_line(changed.stderr, "summarize")
    other_option = run_cli("summarize", str(notes), "--out", str(out), "--length", "short")
    assert "3 done, 0 up to date" in closing_line(other_option.stderr, "summarize")
    forced = run_cli("summarize", str(notes), "--out", str(out), "--length", "short", "--force")
    assert "3 done, 0 up to date" in closing_line(forced.stderr, "summarize")
    assert not list((out / ".lmassist" / "memo").glob("*.jsonl"))  # removed once each output was complete


def test_a_failed_input_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    os.mkfifo(notes / "pipe.txt")  # listed by the walk, but not a file: fails without blocking
    out = tmp_path / "out"
    r = run_cli("summarize", str(notes), "--out", str(out), timeout=180)
    assert r.returncode == 1, r.stderr
    failures = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failures) == 1 and "pipe.txt" in failures[0] and "not a regular file" in failures[0]
    assert "3 done, 0 up to date, 1 failed" in closing_line(r.stderr, "summarize")
    assert (out / "2024" / "march.txt").is_file()
    assert "Traceback" not in r.stderr


def test_files_from_stdin_with_include_and_exclude(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    listing = "\n".join(str(notes / rel) for rel in NOTES) + "\n"
    out = tmp_path / "out"
    r = run_cli("summarize", "--files-from", "-", "--include", "*.md", "--exclude", "budget*", "--out", str(out),
                input=listing)
    assert r.returncode == 0, r.stderr
    assert "1 done" in closing_line(r.stderr, "summarize")
    outputs = [p for p in out.rglob("april.md")]
    assert len(outputs) == 1 and "office" in outputs[0].read_text()
    assert not list(out.rglob("budget.md")) and not list(out.rglob("march.txt"))
    none_left = run_cli("summarize", str(notes), "--include", "*.rst", "--out", str(out))
    assert_one_line_error(none_left, "no input files")


def test_translate_folder_copies_other_files_by_default_and_keeps_code(tmp_path: Path) -> None:
    import re

    page = "<html><body><h1>Hello</h1>\n<p>Good morning.</p>\n<script>var a = 1 < 2;</script></body></html>\n"
    docs = make_tree(tmp_path / "docs", {"intro.md": "# Hello\n\nGood morning.\n\n```python\nprint('hi')\n```\n",
                                         "page.html": page})
    image = b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256))
    (docs / "img").mkdir()
    (docs / "img" / "logo.png").write_bytes(image)
    out = tmp_path / "docs-fr"
    r = run_cli("translate", *SMALL, str(docs), "--to", "fr", "--out", str(out), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 done, 0 up to date, 0 failed, 1 other files copied" in closing_line(r.stderr, "translate")
    assert (out / "img" / "logo.png").read_bytes() == image
    assert "```python\nprint('hi')\n```" in (out / "intro.md").read_text()
    # A page: its markup and script byte for byte, whatever the model wrote between the tags.
    translated = (out / "page.html").read_text()
    tags = re.compile(r"<script>.*?</script>|<[^>]+>", re.S)
    assert tags.findall(translated) == tags.findall(page) and translated != page
    skipped = run_cli("translate", *SMALL, str(docs), "--to", "fr", "--out", str(tmp_path / "bare"), "--other", "skip",
                      "--include", "*.png")
    assert "1 other files skipped" in closing_line(skipped.stderr, "translate")
    assert not (tmp_path / "bare" / "img").exists()


def test_a_folder_without_out_streams_json_lines_one_per_input(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    r = run_cli("summarize", str(notes), "--length", "short")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    # a folder's own files first, then its subfolders, each sorted by name
    assert [rec["source"] for rec in records] == [str(notes / rel) for rel in ("budget.md", "2024/april.md",
                                                                                "2024/march.txt")]
    assert all(rec["task"] == "summarize" and rec["summaries"][0]["summary"] for rec in records)


def test_json_lines_reach_the_reader_before_the_run_ends(tmp_path: Path) -> None:
    """A pipeline starts at once: the first record is readable while later inputs still run."""
    files = {f"n{i}.md": "Good morning. The weather is nice today. We go to the market.\n" for i in range(3)}
    docs = make_tree(tmp_path / "docs", files)
    proc = subprocess.Popen([sys.executable, "-m", "lmassist", "translate", *SMALL, str(docs), "--to", "fr", "--jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        still_running = proc.poll() is None
        rest = proc.stdout.read()
        proc.wait(timeout=300)
    finally:
        proc.kill()
    assert first["source"].endswith("n0.md") and first["translations"][0]["text"].strip()
    assert still_running, "the first record came only when the whole run had ended"
    assert len(rest.splitlines()) == 2


def test_concurrency_is_refused_for_a_local_model_before_any_work(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    out = tmp_path / "out"
    r = run_cli("summarize", str(notes), "--out", str(out), "--concurrency", "2")
    assert_one_line_error(r, "--concurrency 2 needs a model that serves requests in parallel")
    assert not [p for p in out.rglob("*") if p.is_file() and ".lmassist" not in p.parts]
    assert_one_line_error(run_cli("summarize", str(notes / "budget.md"), "--concurrency", "2"), "in parallel")
    assert_one_line_error(run_cli("summarize", str(notes), "--concurrency", "0"), "at least 1")


def test_out_and_output_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(run_cli("summarize", str(notes), "--out", str(afile)), "is a file")
    assert_one_line_error(run_cli("summarize", str(notes), "--out", str(tmp_path / "o"), "-o", "x"), "not both")
    assert_one_line_error(run_cli("summarize", "-", "--out", str(tmp_path / "o"), input="Hi there."), "stdin")
    assert_one_line_error(run_cli("summarize", str(tmp_path / "nope" / "*.md")), "no files match")
    assert_one_line_error(run_cli("summarize", str(notes), "--overview"), "--overview needs --out")



def test_overview_summarizes_the_set_and_is_redone_only_when_a_summary_changes(tmp_path: Path) -> None:
    notes = make_tree(tmp_path / "notes")
    out = tmp_path / "summaries"
    first = run_cli("summarize", str(notes), "--out", str(out), "--overview")
    assert first.returncode == 0, first.stderr
    assert f"overview: {out / 'overview.md'}" in first.stderr
    overview = (out / "overview.md").read_text()
    assert overview.strip() and any(word in overview for word in ("budget", "March", "office"))
    again = run_cli("summarize", str(notes), "--out", str(out), "--overview")
    assert "overview:" not in again.stderr and "0 done, 3 up to date" in closing_line(again.stderr, "summarize")
    (notes / "2024" / "march.txt").write_text("The picnic was cancelled because of rain. Everyone stayed home.\n")
    changed = run_cli("summarize", str(notes), "--out", str(out), "--overview")
    assert f"overview: {out / 'overview.md'}" in changed.stderr and "1 done, 2 up to date" in changed.stderr
