"""Shared fixtures: an isolated lmassist home per test, the real default model, a fresh plugin manager."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmassist import plugins


def _user_models_dir() -> Path:
    """Where the README's install put the default model (before tests move LMASSIST_HOME)."""
    from lmassist.config import Paths

    return Paths.from_env().models


USER_MODELS = _user_models_dir()


@pytest.fixture(scope="session")
def llamacpp_checks(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Check once, in a child process, that llama.cpp runs the default model on this machine.

    Where it crashes (a native segfault, as on some AMX Xeons before the fallback), the session
    stops here with one line saying so, instead of dying mid-suite with no summary. The check's
    cache file is then given to every test, so each test's fresh home does not check again.
    """
    from lmassist.modelfiles import DEFAULT_GGUF

    path = USER_MODELS / DEFAULT_GGUF.filename
    if importlib.util.find_spec("llama_cpp") is None or not path.exists():
        return None
    from lmassist.backends.llamacpp_check import cache_file, checked_extra_buffers
    from lmassist.errors import ModelLoadError

    home = tmp_path_factory.mktemp("llamacpp-check")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMASSIST_HOME", str(home))
        for var in ("LMASSIST_CONFIG_DIR", "LMASSIST_DATA_DIR", "LMASSIST_CACHE_DIR"):
            mp.delenv(var, raising=False)
        try:
            checked_extra_buffers(str(path), "auto")
        except ModelLoadError as e:
            pytest.exit(f"llama.cpp cannot run the default model on this machine: {e}", returncode=3)
        return cache_file()


@pytest.fixture(autouse=True)
def lmassist_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llamacpp_checks: Path | None) -> Path:
    """Every test gets its own config, data and cache folders; models stay shared (read-only use)."""
    home = tmp_path / "lmassist-home"
    monkeypatch.setenv("LMASSIST_HOME", str(home))
    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(USER_MODELS))
    for var in ("LMASSIST_CONFIG_DIR", "LMASSIST_DATA_DIR", "LMASSIST_CACHE_DIR", "LMASSIST_MODEL", "LMASSIST_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("LMASSIST_LOAD_PLUGINS", raising=False)
    # One compute thread per model: on a shared 2-core machine llama.cpp's spinning threads collapse
    # (measured here: 0.6 tokens/s with two threads under load, 23 with one), and tests assert
    # behaviour, not speed.
    settings = home / "config" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"llamacpp.threads": 1, "hf.threads": 1, "inhouse.threads": 1}\n')
    if llamacpp_checks is not None and llamacpp_checks.exists():
        (home / "cache").mkdir(parents=True, exist_ok=True)
        shutil.copy(llamacpp_checks, home / "cache" / llamacpp_checks.name)
    plugins.reset_manager()
    yield home
    plugins.reset_manager()


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    from lmassist.modelfiles import DEFAULT_GGUF

    path = USER_MODELS / DEFAULT_GGUF.filename
    if not path.exists():
        pytest.fail(
            f"the default model is not installed at {path}; run the README's test command "
            "(it pulls the model first: lmassist models pull smollm2-135m-instruct)"
        )
    return path


@pytest.fixture(scope="session")
def smollm(default_gguf: Path):
    """The real default model through the llama.cpp backend, loaded once for the session."""
    from lmassist.registry import Registry

    plugins.reset_manager()
    model = Registry(plugins.PluginManager(load_entry_points=False)).load("llamacpp:smollm2-135m-instruct", threads=1)
    yield model
    model.close()


@pytest.fixture
def busy_cores():
    """One busy process per physical core (a user's compile, a second model), killed afterwards."""
    from lmassist.system import physical_cores

    cores = physical_cores()
    if cores < 2:
        pytest.skip("one core: there is no thread count to back off from")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    time.sleep(0.5)  # let them show up in the machine's CPU accounting
    yield cores
    for proc in busy:
        proc.kill()
        proc.wait()


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, ignore: tuple[str, ...] = ()) -> str:
    """The bad-input policy: a non-zero exit, one ``Error:`` line on stderr, no traceback."""
    assert proc.returncode != 0
    err = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(ignore or ("\0",))]
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("Error:") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def plugin_env(site: Path, name: str, module_code: str) -> dict[str, str]:
    """Install plugin ``name`` (module ``name`` with dashes as underscores, entry point in group
    ``lmassist``) as a real distribution in ``site``; the environment that puts it on the path of a
    ``run_cli`` subprocess."""
    mod = name.replace("-", "_")
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{mod}.py").write_text(module_code)
    info = site / f"{mod}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lmassist]\n{mod.removeprefix('lmassist_')} = {mod}\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])}


def run_cli(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``lmassist`` in a subprocess with the test's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lmassist", *args],
        input=input, capture_output=True, text=True, env=full_env, timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
