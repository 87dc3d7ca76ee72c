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
    return conftest.assert_one_line_error(proc, *needles, ignore=("Installing ",))  # pip's progress line


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
    assert "Installed plugin lmassist-proofread 0.1.0 (register_tasks)" in proc.stdout
    assert (site_packages(venv) / "lmassist_proofread").is_dir()  # in the fresh venv, nowhere else

    row = plugin_rows(venv)["lmassist-proofread"]
    assert row["version"] == "0.1.0" and row["hooks"] == ["register_tasks"] and row["error"] is None
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
    assert_one_line_error(lmassist(venv, "install", "lmassist-no-such-package-xyz"),
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
