"""The train / eval / optimize commands, on a bare click group (as the real CLI registers them)."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402

from lmassist import bench as bench_plugin  # noqa: E402
from lmassist.commands.inhouse import register_commands  # noqa: E402
from lmassist.generation import LMAssistError  # noqa: E402

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n" * 16


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("LMASSIST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LMASSIST_MODELS_DIR", raising=False)
    group = click.Group("lmassist")
    bench = click.Group("bench")
    group.add_command(bench)
    register_commands(group)
    bench_plugin.register_commands(group)  # bench inhouse lives with the other benchmarks
    return group


def run(cli, *args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_commands_are_registered_with_teaching_help(cli):
    assert {"train", "eval", "optimize"} <= set(cli.commands)
    assert "inhouse" in cli.commands["bench"].commands
    out = run(cli, "train", "--help").output
    assert "Examples" in out and "--arch" in out and "--devices" in out and "--resume" in out
    assert "Examples" in run(cli, "eval", "--help").output
    assert "Examples" in run(cli, "optimize", "--help").output


def test_every_command_the_help_names_exists():
    """train --help once sent people to a `complete` command that never existed."""
    from lmassist.cli import build_cli

    real = build_cli()
    texts = {args: run_cli(*args, "--help") for args in (("train",), ("eval",), ("optimize",), ("bench", "inhouse"))}
    for args, proc in texts.items():
        assert proc.returncode == 0, proc.stderr
        named = re.findall(r"lmassist ([a-z][a-z-]*)", proc.stdout)
        assert named, args
        for command in named:
            assert command in real.commands, f"{' '.join(args)} --help names 'lmassist {command}', which does not exist"
        for slash in re.findall(r"/([a-z]+) inhouse:", proc.stdout):
            from lmassist.tui.commands import BUILTINS

            assert slash in {c.name for c in BUILTINS}
    train_help = texts[("train",)].stdout
    assert 'lmassist ask -m inhouse:NAME' in train_help and "complete" not in train_help


def test_optimize_help_promises_only_what_was_measured():
    out = " ".join(run_cli("optimize", "--help").stdout.split())
    assert "faster copy" not in out and "It is not faster" in out
    assert "0.26x the size" in out and "at the same speed" in out
    assert "faster" not in run_cli("--help").stdout.split("optimize", 1)[1].splitlines()[0]  # the summary line


@pytest.mark.slow
def test_train_eval_optimize_end_to_end(cli, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    result = run(cli, "train", str(corpus), "--name", "catdog", "--size", "tiny", "--steps", "3",
                 "--batch-size", "4", "--quiet")
    assert result.exit_code == 0, result.output
    assert "saved to" in result.output and "inhouse:catdog" in result.output
    assert re.search(r"peak memory [\d,]+ MB", result.output)
    assert (tmp_path / "home" / "data" / "models" / "inhouse" / "catdog" / "model.safetensors").exists()

    result = run(cli, "eval", "inhouse:catdog", str(corpus), "--baseline", "ngram", "--order", "3")
    assert result.exit_code == 0, result.output
    assert "bits/char" in result.output and "Kneser-Ney" in result.output

    result = run(cli, "optimize", "catdog", "--quantize", "int8", "--prune", "0.3", "--rounds", "1")
    assert result.exit_code == 0, result.output
    assert "size (KB)" in result.output and "inhouse:catdog-int8-pruned30" in result.output
    assert "tokens/s: median of 1 round decoding both in lockstep, one thread" in result.output
    assert "the copy: int8 weights on disk, decoded to fp32 when loaded, 30% of each weight matrix" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (("train", "{tmp}/missing.txt", "--steps", "1"), "no such file"),
        (("train", "{tmp}/empty.txt", "--steps", "1"), "empty"),
        (("train", "{tmp}/c.txt", "--steps", "1", "--minutes", "1"), "not both"),
        (("eval", "nosuchmodel", "{tmp}/c.txt"), "unknown in-house model"),
        (("optimize", "shakespeare"), "nothing to do"),
        (("optimize", "shakespeare", "--quantize", "int8", "--rounds", "0"), "--rounds must be at least 1"),
    ],
)
def test_bad_input_is_a_one_line_error(cli, tmp_path, args, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "c.txt").write_text(TEXT)
    result = run(cli, *(a.format(tmp=tmp_path) for a in args))
    assert isinstance(result.exception, LMAssistError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_eval_of_a_corrupt_checkpoint_is_a_load_error(cli, tmp_path):
    folder = tmp_path / "home" / "data" / "models" / "inhouse" / "broken"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{")
    (tmp_path / "c.txt").write_text(TEXT)
    result = run(cli, "eval", "broken", str(tmp_path / "c.txt"))
    assert isinstance(result.exception, LMAssistError) and "config.json is corrupt" in str(result.exception)


def test_auto_size_fits_the_budget():
    from lmassist.inhouse.train import TrainConfig

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert TrainConfig(minutes=1.5).resolve_size(cpu) == "tiny"  # a short budget buys steps of a small model
    assert TrainConfig(minutes=30).resolve_size(cpu) == "small"
    assert TrainConfig(steps=500).resolve_size(cpu) == "small"
    assert TrainConfig(minutes=1.5).resolve_size(gpu) == "small"
    assert TrainConfig(size="medium", minutes=1).resolve_size(cpu) == "medium"


def test_bench_inhouse_prints_the_race_and_training_memory(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT * 8)
    proc = run_cli("bench", "inhouse", "--seconds", "1", "--tokens", "8", "--data", str(corpus), timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "KV cache" in out and "reference recipe" in out
    assert "ours: transformer tiny (--size auto)" in out and "ours: lstm tiny (--size auto)" in out
    losses = [float(v) for v in re.findall(r"val (\d+\.\d+) nats/char", out)]
    assert len(losses) == 3 and all(0 < v < 10 for v in losses)
    assert re.search(r"peak resident memory of 'lmassist train --size small' .*: [\d,]+ MB", out)


def test_training_with_stderr_not_a_terminal_prints_progress_lines(tmp_path):
    """A log file or CI sees that training is alive, not three silent minutes."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat and looked at the hat. " * 400)
    proc = run_cli("train", str(corpus), "--steps", "40", "--size", "tiny", "--name", "piped",
                   env={"LMASSIST_PROGRESS_INTERVAL": "0.001"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("train: step ")]
    assert lines and "/40" in lines[0] and "loss" in lines[0]
