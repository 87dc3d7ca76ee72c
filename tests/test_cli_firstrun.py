"""A newcomer's first run (issue 13 item 6): missing extras, install hints that fit the machine,
``--help`` in sections, names never cut, one size unit, progress on stderr when it is a pipe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import assert_one_line_error, plugin_env, run_cli

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def run_hiding(modules: list[str], *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``lmassist ARGS`` in a child where ``modules`` cannot be imported, as on a machine without them."""
    code = (
        "import sys\n"
        f"for m in {modules!r}:\n    sys.modules[m] = None\n"
        "from lmassist.cli import main\n"
        f"main({list(args)!r})\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _path_with_gpu(tmp_path: Path, gpu: bool) -> str:
    """A PATH with the interpreter's folder, and a fake ``nvidia-smi`` when ``gpu``."""
    bin_dir = tmp_path / ("gpu-bin" if gpu else "cpu-bin")
    bin_dir.mkdir()
    if gpu:
        smi = bin_dir / "nvidia-smi"
        smi.write_text("#!/bin/sh\nexit 0\n")
        smi.chmod(0o755)
    return os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])


needs_no_real_gpu = pytest.mark.skipif(
    os.path.isdir("/proc/driver/nvidia"), reason="this machine has an NVIDIA driver: the CPU hint never shows"
)


# -- a missing optional dependency names its extra -------------------------------------------------


@needs_no_real_gpu
def test_train_without_torch_names_the_inhouse_extra_and_the_cpu_wheel(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 50)
    proc = run_hiding(["torch"], "train", str(corpus), "--name", "mine",
                      env={"PATH": _path_with_gpu(tmp_path, gpu=False)})
    line = assert_one_line_error(proc, "torch is not installed", "lmassist[inhouse]", CPU_INDEX)
    assert "ModuleNotFoundError" not in line and "--debug" not in line


def test_missing_torch_on_a_gpu_machine_hints_the_plain_extra(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 50)
    proc = run_hiding(["torch"], "train", str(corpus), "--name", "mine",
                      env={"PATH": _path_with_gpu(tmp_path, gpu=True)})
    line = assert_one_line_error(proc, "pip install 'lmassist[inhouse]'")
    assert CPU_INDEX not in line


def test_missing_module_with_an_hf_model_names_the_hf_extra(tmp_path: Path) -> None:
    proc = run_hiding(["torch", "transformers"], "bench", "hf", env={"PATH": _path_with_gpu(tmp_path, gpu=True)})
    assert_one_line_error(proc, "lmassist[hf]")


def test_a_module_that_is_not_an_extra_keeps_the_generic_error() -> None:
    from lmassist.install_hints import extra_for_module, missing_module_message

    assert missing_module_message("numpy_not_ours") is None
    assert extra_for_module("llama_cpp.llama_cpp") == "llamacpp"
    assert extra_for_module("torch", "ask -m hf:gpt2 hi") == "hf"
    assert extra_for_module("torch", "train corpus.txt") == "inhouse"


# -- the install hint fits the machine ---------------------------------------------------------------


@needs_no_real_gpu
def test_backends_hint_is_the_cpu_wheel_without_a_gpu_and_plain_with_one(tmp_path: Path) -> None:
    cpu = run_hiding(["torch"], "backends", "--json", env={"PATH": _path_with_gpu(tmp_path, gpu=False)})
    assert cpu.returncode == 0, cpu.stderr
    rows = {r["name"]: r for r in json.loads(cpu.stdout)}
    for name in ("inhouse", "hf"):
        assert rows[name]["install_hint"] == (
            f"pip install torch --index-url {CPU_INDEX} && pip install 'lmassist[{name}]'"
        )
    gpu = run_hiding(["torch"], "backends", "--json", env={"PATH": _path_with_gpu(tmp_path, gpu=True)})
    rows = {r["name"]: r for r in json.loads(gpu.stdout)}
    assert rows["inhouse"]["install_hint"] == "pip install 'lmassist[inhouse]'"
    # the table shows each hint whole, on its own line, ready to copy
    (tmp_path / "t").mkdir()
    table = run_hiding(["torch"], "backends", env={"PATH": _path_with_gpu(tmp_path / "t", gpu=False)})
    assert table.returncode == 0, table.stderr
    assert f"inhouse: pip install torch --index-url {CPU_INDEX} && pip install 'lmassist[inhouse]'" in table.stdout


# -- lmassist --help in sections ---------------------------------------------------------------------

PLUGIN = textwrap.dedent('''
    import click
    from lmassist import hookimpl
    from lmassist.tasks.base import Param, Task, TaskResult


    class Whisper(Task):
        name = "whisper"
        summary = "Repeat the words in lower case (a third-party test task)."
        params = (Param("words", "argument", multiple=True),)
        needs_model = False

        def run(self, model, values, progress=None, cancel=None):
            return TaskResult(text=" ".join(values["words"]).lower(), data={})


    @click.command("zzz-hello")
    def hello():
        """Say hello (a third-party test command)."""
        click.echo("hello")


    @hookimpl
    def register_tasks(register):
        register(Whisper())


    @hookimpl
    def register_commands(cli):
        cli.add_command(hello)
''')


def _sections(help_text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
            sections[current] = []
        elif current and re.match(r"^  [a-z]", line):
            sections[current].append(line.split()[0])
    return sections


def test_help_groups_commands_in_tour_order_with_plugin_commands(tmp_path: Path) -> None:
    proc = run_cli("--help", env=plugin_env(tmp_path / "site", "lmassist-whisper", PLUGIN))
    assert proc.returncode == 0, proc.stderr
    assert 'lmassist ask "What is a haiku?"' in proc.stdout  # the docstring's examples stay
    sections = _sections(proc.stdout)
    titles = [t for t in sections if t not in ("Usage", "Options")]
    assert titles[:2] == ["Chat", "Tasks"] and titles.index("Diagnostics") > titles.index("History and settings")
    assert sections["Chat"] == ["ask", "chat", "templates"]
    assert sections["Tasks"][:4] == ["summarize", "translate", "sentiment", "qa"]
    assert "whisper" in sections["Tasks"]  # a plugin's task sits with the tasks
    assert sections["From plugins"] == ["zzz-hello"]
    assert {"models", "backends", "plugins"} <= set(sections["Models and plugins"])
    assert {"history", "settings"} <= set(sections["History and settings"])
    assert "bench" in sections["Diagnostics"]
    from lmassist.cli import build_cli

    listed = {name for names in sections.values() for name in names}
    assert {n for n, c in build_cli().commands.items() if not c.hidden} <= listed  # none goes missing


# -- names are never cut ------------------------------------------------------------------------------

LONG_MODEL = "llamacpp:smollm2-135m-instruct-q4-k-m-with-a-long-name"


def _long_history() -> list[str]:
    from lmassist.store import Store

    ids = []
    with Store() as s:
        for i in range(3):
            c = s.new_conversation(model=LONG_MODEL, title=f"A rather long title for conversation {i} " * 3)
            ids.append(c.id)
    return ids


@pytest.mark.parametrize("columns", ["80", "40"])
def test_history_list_piped_keeps_ids_and_model_names_whole(columns: str) -> None:
    ids = _long_history()
    proc = run_cli("history", "list", env={"COLUMNS": columns})
    assert proc.returncode == 0, proc.stderr
    for cid in ids:
        assert cid in proc.stdout
    assert proc.stdout.count(LONG_MODEL) == 3 and "…" not in proc.stdout


def test_names_table_on_a_narrow_terminal_ellipsizes_the_title_not_the_names() -> None:
    import io

    from rich.console import Console

    from lmassist.commands.common import NamesTable

    for width in (60, 90, 120):
        buf = io.StringIO()
        con = Console(file=buf, width=width, force_terminal=True, color_system=None)
        table = NamesTable()
        table.name_column("ID")
        table.name_column("Model")
        table.column("Title", flexible=True, min_width=10)
        table.add_row("019ab3c4d5e6f7a8", LONG_MODEL, "A rather long title " * 5)
        table.print(con)
        lines = buf.getvalue().splitlines()
        assert "019ab3c4d5e6f7a8" in lines[1] and LONG_MODEL in lines[1] and lines[1].rstrip().endswith("…")
        widest = max(len(line.rstrip()) for line in lines)
        if width >= 16 + 2 + len(LONG_MODEL) + 2 + 10:
            assert widest <= width  # the names and a 10-column title fit: so does the table
        else:
            assert widest == 16 + 2 + len(LONG_MODEL) + 2 + 10  # too narrow: past the edge, names whole


# -- one size unit ------------------------------------------------------------------------------------


def test_human_size_is_decimal_like_the_pull_bar() -> None:
    from rich.filesize import decimal

    from lmassist.commands.common import human_size

    assert human_size(98_400_000) == "98.4 MB"  # the default model: the pull bar says 98.4 MB
    for n in (1_500, 98_400_000, 5_300_000_000):
        assert human_size(n) == decimal(n, precision=1)
    assert human_size(999_999) == "1.0 MB"
    assert human_size(512) == "512 B" and human_size(None) == "-"


# -- progress on stderr when it is not a terminal ----------------------------------------------------


def test_progress_lines_on_a_piped_stderr() -> None:
    code = textwrap.dedent('''
        import time
        from lmassist.commands.common import ProgressReporter
        with ProgressReporter("demo", "lines") as progress:
            time.sleep(0.35)          # before any step: the model loads, say
            for i in range(1, 11):
                progress(i, 10, info=f"loss {3 - i / 10:.2f}" if i > 5 else None)
                time.sleep(0.1)
        print("done")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LMASSIST_PROGRESS_INTERVAL": "0.1"})
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    lines = proc.stderr.splitlines()
    assert any(re.fullmatch(r"demo: working, \d+ s elapsed", line) for line in lines), lines
    assert any(re.fullmatch(r"demo: \d+/10 lines \(\d+%\), [\d.]+/s, ETA \d+ s", line) for line in lines), lines
    assert any(re.fullmatch(r"demo: \d+/10 lines \(\d+%\), .*, loss 2\.\d\d", line) for line in lines), lines
    assert re.fullmatch(r"demo: 10/10 lines in \d+ s", lines[-1]), lines


def test_progress_lines_are_off_with_interval_zero_and_absent_for_short_work() -> None:
    code = ("from lmassist.commands.common import ProgressReporter\n"
            "with ProgressReporter('demo') as p:\n    p(1, 1)\n")
    for interval in ("0", "30"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "LMASSIST_PROGRESS_INTERVAL": interval})
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_sentiment_with_piped_stdout_and_stderr_shows_progress(tmp_path: Path, default_gguf: Path) -> None:
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("I loved this film.\nTerrible service, never again.\nGreat value for money.\n" * 3)
    proc = run_cli("sentiment", str(reviews), "--per-line", "--calibration", "none",
                   env={"LMASSIST_PROGRESS_INTERVAL": "0.2"})
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 9  # the results, on stdout only
    progress = [line for line in proc.stderr.splitlines() if line.startswith("sentiment: ")]
    assert progress and all("Error" not in line for line in proc.stderr.splitlines())
    assert re.fullmatch(r"sentiment: (\d+)/\1 in \d+ s", progress[-1]), proc.stderr
