"""``lmassist install`` / ``uninstall`` end to end in a fresh virtual environment, and broken plugins.

The fresh venv is made with ``--without-pip`` and gets lmassist installed from a wheel built from
this checkout; a ``.pth`` file runs ``site.addsitedir`` on this project's site-packages, so it sees
pip, setuptools and the model libraries without copying gigabytes, while everything
``lmassist install`` adds lands in the fresh venv alone (the project's venv is shared and must not
change). pip runs offline (``PIP_NO_INDEX``, no build
isolation), so the test needs no network and a missing package fails the same way PyPI would say.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import conftest
import pytest
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
PROOFREAD = "./plugins/lmassist-proofread"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees this project's packages through a .pth file; returns its python."""
    root = tmp_path_factory.mktemp("fresh-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_path("purelib")]
    lines = [f"import site; site.addsitedir({p!r})" for p in parents]
    (Path(purelib) / "_lmassist_project_site.pth").write_text("\n".join(lines) + "\n")
    # lmassist itself is installed for real, from a wheel built from this checkout, so the fresh
    # venv's own copy (first on its path) is what runs, as for a user's `pip install lmassist`.
    wheels = tmp_path_factory.mktemp("wheel")
    had_build = (ROOT / "build").exists()
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(ROOT)], check=True, timeout=300, env=offline, capture_output=True)
    if not had_build:
        import shutil

        shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = wheels.glob("lmassist-*.whl")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300, env=offline, capture_output=True)
    return python


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def lmassist(python: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``lmassist`` with the fresh venv's interpreter, from the repository root, pip offline."""
    full = {**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_CONFIG_FILE": os.devnull,
            **(env or {})}
    full.pop("PYTHONPATH", None)
    # The venv's console script, as a user runs it (``python -m`` would put the checkout on sys.path).
    return subprocess.run(
        [str(python.parent / "lmassist"), *args], input=input, capture_output=True, text=True, env=full,
        cwd=ROOT, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL,
    )


def plugin_rows(python: Path) -> dict[str, dict]:
    proc = lmassist(python, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    return {r["name"]: r for r in json.loads(proc.stdout)}


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    # What install says before pip runs: the command, the note on remote code, its progress line.
    return conftest.assert_one_line_error(proc, *needles, ignore=("Will run: ", "Note: ", "Installing "))


@pytest.fixture
def tidy_plugin_folder():
    """pip builds a local folder in place; remove the build/ and .egg-info it leaves (both git-ignored)."""
    folder = ROOT / PROOFREAD
    leftovers = [folder / "build", folder / "lmassist_proofread.egg-info"]
    existed = {p for p in leftovers if p.exists()}
    yield
    import shutil

    for p in leftovers:
        if p not in existed:
            shutil.rmtree(p, ignore_errors=True)


def test_install_run_and_uninstall_a_plugin(venv, default_gguf, tidy_plugin_folder):
    where = subprocess.run([str(venv), "-c", "import lmassist; print(lmassist.__file__)"],
                           capture_output=True, text=True, check=True, cwd=venv.parent).stdout
    assert where.startswith(str(site_packages(venv)))  # the fresh venv's own lmassist runs
    assert "lmassist-proofread" not in plugin_rows(venv)

    proc = lmassist(venv, "install", PROOFREAD)
    assert proc.returncode == 0, proc.stderr
    assert "Installed plugin lmassist-proofread 0.1.0 (register_tasks, register_templates)" in proc.stdout
    assert (site_packages(venv) / "lmassist_proofread").is_dir()  # in the fresh venv, nowhere else

    row = plugin_rows(venv)["lmassist-proofread"]
    assert row["version"] == "0.1.0" and row["hooks"] == ["register_tasks", "register_templates"] and row["error"] is None
    assert "proofread" in lmassist(venv, "--help").stdout
    tasks = {t["name"]: t for t in json.loads(lmassist(venv, "tasks", "--json").stdout)}
    assert tasks["proofread"]["plugin"] == "lmassist-proofread"

    ran = lmassist(venv, "proofread", "-", input="Their was a mistake in this sentance.\n")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()

    again = lmassist(venv, "install", PROOFREAD)  # a local folder reinstalls; it must stay a working plugin
    assert again.returncode == 0, again.stderr

    gone = lmassist(venv, "uninstall", "lmassist-proofread", "-y")
    assert gone.returncode == 0, gone.stderr
    assert "Uninstalled lmassist-proofread 0.1.0" in gone.stdout
    assert "lmassist-proofread" not in plugin_rows(venv)
    assert "proofread" not in lmassist(venv, "--help").stdout
    assert "No such command 'proofread'" in lmassist(venv, "proofread", "-").stderr
    assert not (site_packages(venv) / "lmassist_proofread").exists()


def test_failed_installs_leave_the_installation_as_it_was(venv, tmp_path):
    before = sorted(p.name for p in site_packages(venv).iterdir())

    assert_one_line_error(lmassist(venv, "install", "./plugins/no-such-plugin"),
                          "no such file or folder: ./plugins/no-such-plugin")
    assert_one_line_error(lmassist(venv, "install", "--yes", "lmassist-no-such-package-xyz"),
                          "cannot install lmassist-no-such-package-xyz", "No matching distribution", "nothing was changed")

    broken = tmp_path / "broken-plugin"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"
    """))
    (broken / "setup.py").write_text("raise SystemExit('this plugin does not build')\n")
    assert_one_line_error(lmassist(venv, "install", str(broken)), "cannot install", "nothing was changed")

    needs_newer = tmp_path / "needs-newer"
    (needs_newer / "needs_newer").mkdir(parents=True)
    (needs_newer / "needs_newer" / "__init__.py").write_text("")
    (needs_newer / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "needs-newer"
        version = "1.0"
        dependencies = ["lmassist>=99"]
        [project.entry-points.lmassist]
        needs_newer = "needs_newer"
    """))
    # a plugin may never replace the lmassist it is installed into
    assert_one_line_error(lmassist(venv, "install", str(needs_newer)), "cannot install", "nothing was changed")

    assert sorted(p.name for p in site_packages(venv).iterdir()) == before


def test_uninstall_refuses_what_is_not_a_plugin(venv):
    assert_one_line_error(lmassist(venv, "uninstall", "lmassist", "-y"), "refusing to uninstall lmassist itself")
    assert_one_line_error(lmassist(venv, "uninstall", "Click", "-y"), "lmassist needs it")
    assert_one_line_error(lmassist(venv, "uninstall", "lmassist-nothing-here", "-y"), "is not installed")
    assert_one_line_error(lmassist(venv, "uninstall", "numpy", "-y"), "not an lmassist plugin")
    assert_one_line_error(lmassist(venv, "uninstall", "httpx"), "not an lmassist plugin")
    assert_one_line_error(lmassist(venv, "install", "-e", "some-name"), "-e (editable) needs a local folder")


# -- broken plugins, reported by `lmassist plugins` while the rest keeps working ---------------------


def write_dist(site_dir: Path, name: str, code: str) -> None:
    """An installed distribution (dist-info with an 'lmassist' entry point) plus its module."""
    mod = name.replace("-", "_")
    (site_dir / f"{mod}.py").write_text(textwrap.dedent(code))
    info = site_dir / f"{mod}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lmassist]\n{mod} = {mod}\n")


@pytest.fixture
def broken_site(tmp_path: Path) -> dict[str, str]:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    write_dist(site_dir, "good-plugin", """
        import click
        from lmassist import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                "Say hello from a plugin."
                click.echo("hello from good-plugin")
    """)
    write_dist(site_dir, "import-broken", "raise ImportError('needs the missing library frobnicate')\n")
    write_dist(site_dir, "hook-broken", """
        from lmassist import hookimpl

        @hookimpl
        def register_commands(cli):
            raise RuntimeError('hook exploded')

        @hookimpl
        def register_backends(register):
            raise ValueError('no backend today')
    """)
    return {"PYTHONPATH": str(site_dir)}


def test_broken_plugins_are_reported_and_the_rest_keeps_working(broken_site):
    proc = run_cli("plugins", "--json", env=broken_site)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["good-plugin"]["error"] is None and rows["good-plugin"]["version"] == "1.0"
    assert "failed to load" in rows["import-broken"]["error"] and "frobnicate" in rows["import-broken"]["error"]
    assert "raised in register_commands" in rows["hook-broken"]["error"] and "hook exploded" in rows["hook-broken"]["error"]
    assert "Traceback" not in proc.stderr and "Warning: plugin import-broken failed to load" in proc.stderr

    table = run_cli("plugins", env={**broken_site, "COLUMNS": "250"})
    assert table.returncode == 0 and "frobnicate" in table.stdout and "hook exploded" in table.stdout

    hello = run_cli("hello", env=broken_site)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from good-plugin"
    assert "Traceback" not in hello.stderr
    backends = run_cli("backends", "--json", env=broken_site)
    assert backends.returncode == 0 and "llamacpp" in {b["name"] for b in json.loads(backends.stdout)}
    assert "no backend today" in backends.stderr  # reported, not fatal


def test_load_plugins_env_is_a_safe_mode(broken_site):
    none = run_cli("plugins", "--json", env={**broken_site, "LMASSIST_LOAD_PLUGINS": ""})
    assert none.returncode == 0 and json.loads(none.stdout) == [] and not none.stderr.strip()
    assert "No such command 'hello'" in run_cli("hello", env={**broken_site, "LMASSIST_LOAD_PLUGINS": ""}).stderr
    one = run_cli("plugins", "--json", env={**broken_site, "LMASSIST_LOAD_PLUGINS": "good-plugin"})
    assert [r["name"] for r in json.loads(one.stdout)] == ["good-plugin"] and not one.stderr.strip()


# -- a plugin may add names, never take lmassist's own -------------------------------------------------

SHADOW_PLUGIN = '''
import click

from lmassist import hookimpl
from lmassist.generation import Backend, Model, ModelInfo, ModelSpec


class ShadowModel(Model):
    def __init__(self, spec):
        self.info = ModelInfo(name=spec.full_name, backend="llamacpp", context_length=4096, chat_template=True)

    def stream_pieces(self, request):
        request.prompt_tokens = 1
        yield "SHADOW BACKEND ANSWERED"

    def count_tokens(self, text):
        return len(text.split())


class ShadowBackend(Backend):
    name = "llamacpp"
    description = "SHADOW BACKEND"

    def models(self):
        return [ModelSpec(backend="llamacpp", name="smollm2-135m-instruct", installed=True)]

    def load(self, spec, **settings):
        return ShadowModel(spec)


class ShadowTask:
    name = "summarize"
    summary = "SHADOW TASK"

    def command(self):
        return click.Command("summarize", callback=lambda: click.echo("SHADOW TASK ANSWERED"))


@hookimpl
def register_backends(register):
    register(ShadowBackend())


@hookimpl
def register_tasks(register):
    register(ShadowTask())


@hookimpl
def register_commands(cli):
    cli.add_command(click.Command("ask", callback=lambda: click.echo("SHADOW COMMAND ANSWERED")))
    cli.add_command(click.Command("shadow-hello", callback=lambda: click.echo("a new name is fine")))
'''

SHADOW_CLASHES = [
    "plugin lmassist-shadow tried to replace the built-in backend 'llamacpp'; ignored, the built-in is kept",
    "plugin lmassist-shadow tried to replace the built-in command 'ask'; ignored, the built-in is kept",
    "plugin lmassist-shadow tried to replace the built-in task 'summarize'; ignored, the built-in is kept",
]


def shadow_distribution(root: Path) -> Path:
    """A real plugin distribution (pyproject, entry point in group 'lmassist') that takes built-in names."""
    project = root / "lmassist-shadow"
    (project / "lmassist_shadow").mkdir(parents=True)
    (project / "lmassist_shadow" / "__init__.py").write_text(SHADOW_PLUGIN)
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "lmassist-shadow"
        version = "1.0"
        dependencies = ["lmassist"]
        [project.entry-points.lmassist]
        shadow = "lmassist_shadow"
        [tool.setuptools]
        packages = ["lmassist_shadow"]
    """))
    return project


def warned(proc: subprocess.CompletedProcess) -> list[str]:
    return sorted(ln.removeprefix("Warning: ") for ln in proc.stderr.splitlines()
                  if ln.startswith("Warning: ") and "lmassist-shadow" in ln)


def test_an_installed_plugin_cannot_shadow_builtins_and_the_clash_is_reported(venv, default_gguf, tmp_path):
    project = shadow_distribution(tmp_path)
    installed = lmassist(venv, "install", str(project))
    try:
        assert installed.returncode == 0, installed.stderr
        assert "Installed plugin lmassist-shadow 1.0." in installed.stdout
        assert f"Will run: {venv} -m pip" in installed.stderr and installed.stderr.count(str(project)) >= 1
        assert "Note:" not in installed.stderr  # a local folder needs no confirmation
        assert warned(installed) == [f"{c} (remove it with: lmassist uninstall lmassist-shadow)" for c in SHADOW_CLASHES]

        ask = lmassist(venv, "ask", "-m", "llamacpp:smollm2-135m-instruct", "-O", "temperature", "0",
                       "-O", "max_new_tokens", "8", "--no-log", "--json", "Say hello.")
        assert ask.returncode == 0, ask.stderr
        assert "SHADOW" not in ask.stdout
        reply = json.loads(ask.stdout)
        assert reply["reply"].strip() and reply["model"] == "llamacpp:smollm2-135m-instruct"
        assert reply["stats"]["generated_tokens"] >= 1
        assert warned(ask) == SHADOW_CLASHES  # on stderr, once each, for every command

        backends = lmassist(venv, "backends", "--json")
        llamacpp = next(b for b in json.loads(backends.stdout) if b["name"] == "llamacpp")
        assert "SHADOW" not in llamacpp["description"] and warned(backends) == SHADOW_CLASHES
        tasks = {t["name"]: t for t in json.loads(lmassist(venv, "tasks", "--json").stdout)}
        assert tasks["summarize"]["builtin"] and "SHADOW" not in tasks["summarize"]["summary"]
        row = plugin_rows(venv)["lmassist-shadow"]
        assert "tried to replace the built-in" in row["error"]
        assert lmassist(venv, "shadow-hello").stdout.strip() == "a new name is fine"  # what it adds still works
    finally:
        gone = lmassist(venv, "uninstall", "lmassist-shadow", "-y")
    assert gone.returncode == 0, gone.stderr
    assert "lmassist-shadow" not in plugin_rows(venv)


# -- install says what it will run, and asks before fetching code from elsewhere -----------------------


def test_install_of_a_name_or_url_needs_a_yes(venv):
    before = sorted(p.name for p in site_packages(venv).iterdir())
    for target in ("lmassist-openai", "https://example.invalid/plugin.whl", "git+https://example.invalid/p.git"):
        proc = lmassist(venv, "install", target)
        assert_one_line_error(proc, f"not installing {target} without confirmation", "--yes")
        will_run = [ln for ln in proc.stderr.splitlines() if ln.startswith("Will run: ")]
        assert len(will_run) == 1 and will_run[0].startswith(f"Will run: {venv} -m pip ")
        assert " --no-input install --report " in will_run[0] and will_run[0].endswith(f" {target}")
        assert "Note: " in proc.stderr and "anyone can publish" in proc.stderr
    assert sorted(p.name for p in site_packages(venv).iterdir()) == before


def test_install_asks_at_a_terminal_and_no_changes_nothing(venv):
    import pty

    master, slave = pty.openpty()
    full = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    full.pop("PYTHONPATH", None)
    proc = subprocess.Popen([str(venv.parent / "lmassist"), "install", "lmassist-openai"], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, cwd=ROOT)
    os.close(slave)
    os.write(master, b"n\n")
    out, err = proc.communicate(timeout=120)
    os.close(master)
    assert "Install lmassist-openai? [y/N]" in err
    assert "lmassist-openai ships with lmassist; install that copy with: lmassist install " in err
    assert proc.returncode != 0 and "Aborted" in err and "Traceback" not in err
    assert "lmassist-openai" not in plugin_rows(venv)
