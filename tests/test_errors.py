"""One mapping of errors to exit statuses (lmassist.errors), shared by every console entry point."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from lmassist import errors, launch
from lmassist.errors import INTERRUPTED, LMAssistError, exit_for, exit_status


def test_each_kind_of_error_has_its_status_and_line():
    assert exit_status(KeyboardInterrupt()) == (INTERRUPTED, "Interrupted.")
    assert exit_status(BrokenPipeError()) == (0, None)
    assert exit_status(LMAssistError("no such file: x")) == (1, "Error: no such file: x")
    assert exit_status(KeyError("k")) == (1, "Error: KeyError: 'k' (run with --debug for details)")


def test_explain_words_an_unexpected_error_and_never_our_own():
    def explain(error):
        return "install the extra" if isinstance(error, ModuleNotFoundError) else None

    assert exit_status(ModuleNotFoundError("torch"), explain) == (1, "Error: install the extra")
    assert exit_status(ValueError("v"), explain)[1].startswith("Error: ValueError: v")
    assert exit_status(LMAssistError("ours"), lambda e: "never") == (1, "Error: ours")


def test_exit_for_prints_one_line_and_exits(capsys):
    with pytest.raises(SystemExit) as ended:
        exit_for(LMAssistError("bad input"))
    assert ended.value.code == 1
    assert capsys.readouterr().err == "Error: bad input\n"


def test_debug_raises_again_but_not_for_ctrl_c(capsys):
    with pytest.raises(ValueError):
        exit_for(ValueError("boom"), debug=True)
    with pytest.raises(SystemExit) as ended:
        exit_for(KeyboardInterrupt(), debug=True)
    assert ended.value.code == INTERRUPTED and capsys.readouterr().err == "Interrupted.\n"


def test_debug_enabled_reads_the_flag_and_the_environment(monkeypatch):
    monkeypatch.delenv("LMASSIST_DEBUG", raising=False)
    assert errors.debug_enabled(["ask", "--debug"]) and not errors.debug_enabled(["ask"])
    monkeypatch.setenv("LMASSIST_DEBUG", "1")
    assert errors.debug_enabled([])
    monkeypatch.setenv("LMASSIST_DEBUG", "0")
    assert not errors.debug_enabled([])


def test_bare_lmassist_maps_errors_as_the_command_line_does(monkeypatch, capsys):
    def broken() -> None:
        raise LMAssistError("the history cannot be opened")

    monkeypatch.setattr(launch, "open_chat", broken)
    monkeypatch.delenv("LMASSIST_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        launch.main([])
    assert ended.value.code == 1
    assert capsys.readouterr().err == "Error: the history cannot be opened\n"


def test_the_console_script_and_the_command_line_do_not_import_each_other():
    """``lmassist --debug`` with no command and bare ``lmassist`` both open the app from lmassist.start."""
    code = "import sys, lmassist.cli; print('lmassist.launch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("fixed", [True, False], ids=["lmassist", "without-the-guard"])
def test_a_ctrl_c_after_the_command_ends_leaves_without_a_traceback(fixed):
    """A second Ctrl+C that lands while the interpreter tears down (a model freed in its finalizer)
    used to print "Exception ignored in … KeyboardInterrupt". The SIGINT here is sent from an exit
    handler, after the command is over, which is where it landed."""
    code = (
        "import atexit, os, signal, sys, time\n"
        "from lmassist import launch\n"
        f"if not {fixed}: launch.leave_on_ctrl_c = lambda: None\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(2)))\n"
        "sys.argv = ['lmassist', '--version']\n"
        "launch.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    if fixed:
        assert proc.returncode == -signal.SIGINT and "Traceback" not in proc.stderr and proc.stdout.startswith("lmassist")
    else:  # the guard is what makes the difference
        assert "KeyboardInterrupt" in proc.stderr
