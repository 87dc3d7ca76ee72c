"""The ``lmassist bench`` group: every benchmark listed once, one registration, dev data by option."""

from __future__ import annotations

import re

import click
from conftest import run_cli

from lmassist import bench

BENCHMARKS = ("ask", "buffers", "conversation", "docs", "hf", "inhouse", "jobs", "qa", "sentiment", "summarize", "translate", "tui")


def test_bench_help_lists_every_benchmark_once():
    proc = run_cli("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    listed = re.findall(r"^  ([a-z-]+)  ", proc.stdout.split("Commands:", 1)[1], re.M)
    assert sorted(listed) == sorted(BENCHMARKS)
    assert len(listed) == len(set(listed))


def test_one_hook_registers_every_benchmark_and_eval_task():
    cli = click.Group("lmassist")
    cli.add_command(click.Group("bench"))
    bench.register_commands(cli)
    assert sorted(cli.commands["bench"].commands) == sorted(BENCHMARKS)
    assert "eval-task" in cli.commands
    assert {c.callback.__module__ for c in bench.BENCHMARKS} <= {
        f"lmassist.bench.{m}" for m in ("llamacpp", "hf", "tui", "inhouse", "sentiment", "tasks", "docs", "jobs")}


def test_missing_dev_data_is_one_line_naming_the_option(tmp_path):
    for args in (("sentiment",), ("qa",), ("summarize", "--no-memory"), ("translate",), ("inhouse", "--seconds", "1")):
        proc = run_cli("bench", *args, "--data", str(tmp_path / "nowhere"))
        assert proc.returncode == 1, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--data" in lines[0] and str(tmp_path / "nowhere") in lines[0], (args, lines)
        assert "Traceback" not in proc.stderr


def test_the_default_dev_data_is_shown_in_help_and_relative_to_the_working_directory():
    proc = run_cli("bench", "sentiment", "--help")
    assert "../shared/data/eval" in " ".join(proc.stdout.split())
    assert "working directory" in " ".join(proc.stdout.split())


def test_a_folder_given_to_data_is_searched_for_the_dev_file(tmp_path):
    proc = run_cli("bench", "translate", "--to", "de", "--data", str(tmp_path))
    assert proc.returncode == 1
    assert str(tmp_path / "translation-en-de-dev.jsonl") in proc.stderr


def test_bench_tui_takes_the_first_frame_tool_as_an_option(tmp_path):
    """No machine path in the code: without --tool, the built-in tmux method; a missing tool is refused."""
    proc = run_cli("bench", "tui", "--help")
    assert "--tool PATH" in proc.stdout and "tmux" in proc.stdout
    proc = run_cli("bench", "tui", "--tool", str(tmp_path / "missing"), "--skip-lag")
    assert proc.returncode == 2 and "--tool" in proc.stderr


def test_no_bench_module_reads_another_modules_private_names():
    from pathlib import Path

    for path in Path(bench.__file__).parent.glob("*.py"):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            found = [m for m in re.findall(r"\b(\w+)\._[a-z]\w*", code) if m != "self"]
            assert not found, f"{path.name}: {line.strip()}"


def test_bench_sentiment_throughput_puts_batched_one_at_a_time_and_raw_side_by_side(tmp_path):
    """The real default model: raw llama.cpp prompt evaluation of the same tokens beside ours."""
    import json

    data = tmp_path / "sentiment-dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in (
        ("a moving, beautiful film", "positive"), ("dull and far too long", "negative"),
        ("i loved it", "positive"), ("the worst film this year", "negative"))))
    proc = run_cli("bench", "sentiment", "--throughput", "--multi-seq", "--data", str(data), "--limit", "2", "--json",
                   "-m", "llamacpp:smollm2-135m-instruct", timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["reviews"] == 2 and figures["views"] == 2 and figures["same_labels"] is True
    assert figures["prompt_tokens"] > 10 and figures["raw_prompt_tokens_per_s"] > 0
    import pytest

    assert figures["ours_vs_raw"] == pytest.approx(figures["raw_seconds"] / figures["batched_seconds"], rel=0.05)
    assert figures["batched_vs_one_at_a_time"] > 0
    # several sequences per decode, measured beside: the same labels' log-probabilities, nearly
    assert figures["multi_seq_reviews"] == 2 and figures["8_per_decode_s"] > 0
    assert figures["8_per_decode_max_diff_nats"] < 1.0


def test_a_bad_number_list_is_one_line_before_any_model_loads(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"context": "Anna painted it.", "question": "Who painted it?", "answers": ["Anna"], '
                    '"answerable": true}\n')
    # the model does not exist: the list must fail first, naming itself
    proc = run_cli("bench", "qa", "--data", str(data), "-m", "llamacpp:nope", "--calibrations", "0,abc")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["Error: '0,abc' is not a comma list of numbers (e.g. 0,0.5,1)"]


def test_a_table_printed_to_a_file_or_pipe_keeps_every_figure_whole(capsys):
    """Rich sizes a table to 80 columns where there is no terminal, which cut a wide benchmark's
    figures to "0.…" in every log; off a terminal the table keeps its natural width."""
    from lmassist.bench.common import print_table

    label = "calibration 0.5, prior 2, headings, local (default)"
    row = {"setting": label, "half": "held-out", **{f"figure {i}": 0.123456 for i in range(10)}}
    print_table("a wide table", [row], False, {"seconds": 1})
    out = capsys.readouterr().out
    assert label in out and "held-out" in out and out.count("0.123") == 10 and "…" not in out
    assert out.strip().endswith("seconds: 1")


def test_a_quality_benchmark_shows_its_progress_and_keeps_stdout_for_the_figures(tmp_path, default_gguf):
    """The real default model on three SQuAD-style rows: progress lines on stderr (a log's plain
    lines here), the report alone on stdout."""
    import json

    note = "The museum was designed by Clara Benson and opened in 1931. It holds 400 paintings."
    rows = [{"context": note, "question": q, "answers": a, "answerable": bool(a)} for q, a in (
        ("Who designed the museum?", ["Clara Benson"]), ("When did the museum open?", ["1931"]),
        ("Who painted the ceiling?", []))]
    data = tmp_path / "qa-dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("bench", "qa", "--data", str(data), "--variants", "spans", "--json", "--calibrations", "0.5",
                   env={"LMASSIST_PROGRESS_INTERVAL": "0.05"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^qa spans: .*3/3 rows", proc.stderr, re.M), proc.stderr
    report = json.loads(proc.stdout)
    assert report["rows"] == 3 and any("(default)" in r["variant"] for r in report["results"])
