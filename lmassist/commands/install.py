"""``lmassist install`` and ``lmassist uninstall``: add and remove plugins with pip.

Plugins are found through the ``lmassist`` entry points of the environment lmassist runs in, so
they must be installed by *that* interpreter's pip (``sys.executable -m pip``), whatever ``pip`` is
first on the user's PATH (pipx, a venv, a system Python). pip resolves, downloads and builds
everything before it changes anything, so a failure (no such package, a build error, a conflict)
leaves the installation as it was; we check that, and say it, in one line. lmassist itself is
pinned while a plugin installs, so a plugin can never silently replace or upgrade it.

Installing a plugin runs its code, so ``install`` says exactly what it will run (the pip command)
before it runs it. A local folder or file is what the user has in hand; a name or a URL is fetched
from somewhere else, and anyone can register a free name on PyPI, so those need a yes at a
prompt, or ``--yes`` where there is no terminal to ask.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from lmassist import hookimpl
from lmassist.errors import LMAssistError, one_line

ENTRY_POINT_GROUP = "lmassist"


def canonical(name: str) -> str:
    """PEP 503 normalisation, so ``LMAssist_OpenAI`` and ``lmassist-openai`` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution this interpreter can import."""
    importlib.invalidate_caches()
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def plugin_distributions() -> dict[str, str]:
    """``{canonical name: version}`` of the installed distributions that declare an lmassist plugin."""
    importlib.invalidate_caches()
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            found.setdefault(canonical(ep.dist.name), ep.dist.version)
    return found


def _protected() -> set[str]:
    """lmassist and what it needs to run: removing any of these would break the command itself."""
    names = {"lmassist", "pip"}
    try:
        requires = metadata.requires("lmassist") or []
    except metadata.PackageNotFoundError:
        requires = []
    for req in requires:
        if "extra ==" in req.replace('"', "'").replace("extra==", "extra =="):
            continue  # an optional dependency: not needed to run lmassist
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m:
            names.add(canonical(m.group(1)))
    return names


def _lmassist_version() -> str | None:
    try:
        return metadata.version("lmassist")
    except metadata.PackageNotFoundError:
        return None  # running from a source tree: nothing installed to protect


def pip_command(args: list[str]) -> list[str]:
    """The exact command :func:`_pip` runs: this interpreter's pip, never the one on PATH."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]


def _pip(args: list[str], verbose: bool = False) -> subprocess.CompletedProcess:
    """Run this interpreter's pip; its output is captured unless ``verbose`` (then it streams)."""
    cmd = pip_command(args)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    try:
        if verbose:
            return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, text=True)
        return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as e:
        raise LMAssistError(f"cannot run pip with {sys.executable}: {e.strerror or e}") from None


def pip_error(output: str) -> str:
    """The one line of pip's output that says what went wrong."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    if any("No module named pip" in ln for ln in lines):
        return f"pip is not available in lmassist's Python; add it with: {sys.executable} -m ensurepip"
    errors = [ln[len("ERROR:"):].strip() for ln in lines if ln.startswith("ERROR:")]
    # pip prints the cause first and a generic summary ("No matching distribution", "Failed to
    # build") last; the summary reads best unless it only says "see above".
    for line in reversed(errors):
        if line and "see above" not in line.lower():
            return one_line(line)
    interesting = [ln for ln in lines if ln.lower().startswith(("error", "×", "x "))]
    return one_line((interesting or lines or ["pip failed with no output"])[-1].lstrip("×x ").strip())


def _is_url(target: str) -> bool:
    return "://" in target or target.startswith(("git+", "hg+", "svn+", "bzr+"))


def _looks_like_path(target: str) -> bool:
    if _is_url(target):
        return False
    return (
        target.startswith((".", "/", "~"))
        or os.sep in target
        or (os.altsep is not None and os.altsep in target)
        or target.endswith((".whl", ".tar.gz", ".zip"))
        or Path(target).exists()
    )


def resolve_target(target: str, editable: bool) -> str:
    """What to hand pip: an absolute path for local folders and files, names and URLs unchanged."""
    target = target.strip()
    if not target:
        raise LMAssistError("nothing to install: give a package name, a folder or a URL")
    if _looks_like_path(target):
        path = Path(target).expanduser()
        if not path.exists():
            raise LMAssistError(f"no such file or folder: {target}")
        if path.is_dir() and not any((path / f).exists() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
            raise LMAssistError(f"{target} is not a Python project (it has no pyproject.toml or setup.py)")
        return str(path.resolve())
    if editable and not _is_url(target):
        raise LMAssistError("-e (editable) needs a local folder or a VCS URL such as git+https://…")
    return target


def _confirm_remote(target: str, yes: bool) -> None:
    """A name or URL runs code fetched from elsewhere: say so, and have the user agree to it."""
    if _is_url(target):
        origin = "that URL"
    else:
        origin = "the package index (PyPI, unless pip is configured with another index)"
    bundled = _bundled_plugin(target)
    if bundled is not None:
        hint = f"{target} ships with lmassist; install that copy with: lmassist install {bundled}"
    else:
        hint = "the plugins that ship with lmassist are folders: lmassist install ./plugins/NAME"
    click.echo(
        f"Note: {target} is not a local path: pip downloads it from {origin} and runs its code; "
        f"anyone can publish under a free name, so install only what you trust ({hint}).",
        err=True,
    )
    if yes:
        return
    if not _interactive():
        raise LMAssistError(
            f"not installing {target} without confirmation: check the name or URL, then add --yes"
        )
    click.confirm(f"Install {target}?", default=False, abort=True, err=True)


BUNDLED_PLUGINS = ("lmassist-openai", "lmassist-proofread")


def _bundled_plugin(target: str) -> str | None:
    """The folder of a plugin that ships with lmassist's source, when ``target`` is its name.

    These names are not published on PyPI by us: whoever registers one there would be installed.
    """
    name = canonical(re.split(r"[<>=!~\[ ;]", target.strip(), maxsplit=1)[0])
    if name not in BUNDLED_PLUGINS:
        return None
    folder = Path(__file__).resolve().parents[2] / "plugins" / name
    if (folder / "pyproject.toml").is_file():
        try:
            return "./" + str(folder.relative_to(Path.cwd()))
        except ValueError:
            return str(folder)
    return f"PATH/TO/lmassist/plugins/{name} (from lmassist's source)"


def _interactive() -> bool:
    try:
        return bool(sys.stdin and sys.stdin.isatty())
    except (ValueError, OSError):  # a closed stdin
        return False


def _report_installs(report_file: Path) -> list[tuple[str, str]]:
    """``(name, version)`` pairs pip's ``--report`` says it installed (empty: nothing to do)."""
    try:
        report = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        if meta.get("name"):
            out.append((meta["name"], str(meta.get("version", "?"))))
    return out


def _plugin_status(names: set[str]) -> dict[str, dict[str, Any]]:
    """Load the plugins in a fresh process (this one imported the old code) and report each one."""
    proc = subprocess.run(
        [sys.executable, "-m", "lmassist", "plugins", "--json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    try:
        rows = json.loads(proc.stdout)
    except ValueError:
        return {}
    status = {canonical(r["name"]): {**r, "warnings": []} for r in rows if canonical(r["name"]) in names}
    # Every problem, not only the first one the row keeps: a plugin may clash on several names.
    for line in proc.stderr.splitlines():
        m = re.match(r"Warning: (plugin (\S+) .*)", line)
        if m and canonical(m.group(2)) in status:
            status[canonical(m.group(2))]["warnings"].append(m.group(1))
    return status


def _changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = [f"+{n} {v}" for n, v in after.items() if n not in before]
    changed += [f"-{n} {v}" for n, v in before.items() if n not in after]
    changed += [f"{n} {before[n]} -> {v}" for n, v in after.items() if n in before and before[n] != v]
    return sorted(changed)


@click.command()
@click.argument("target", metavar="NAME|PATH|URL")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the plugin if it is already installed.")
@click.option("-e", "--editable", is_flag=True, help="Install a local folder in editable mode (for plugin authors).")
@click.option("-v", "--verbose", is_flag=True, help="Show pip's own output.")
@click.option("-y", "--yes", is_flag=True,
              help="Install a PyPI name or a URL without asking (needed where there is no terminal).")
def install(target: str, upgrade: bool, editable: bool, verbose: bool, yes: bool) -> None:
    """Install a plugin from a local folder or file, a URL or PyPI, into lmassist's own Python.

    The plugin's backends, tasks and commands appear everywhere at once: in 'lmassist --help',
    'lmassist tasks', 'lmassist backends' and the chat app. If pip fails, nothing is changed.
    It prints the exact pip command first. A PyPI name or a URL downloads code from elsewhere:
    it asks before running it (--yes to skip the question; required without a terminal).
    A plugin cannot replace lmassist's own backends, tasks or commands: a name it takes from
    them is ignored and reported.

    \b
    Examples:
      lmassist install ./plugins/lmassist-openai     (the plugins that ship with lmassist)
      lmassist install ./plugins/lmassist-proofread
      lmassist install -e ./my-plugin                (edit it without reinstalling)
      lmassist install -U ./plugins/lmassist-openai  (after updating the checkout)
      lmassist install --yes some-plugin==1.2        (from PyPI: check the name first)
    """
    installed = _pip_install(target, resolve_target(target, editable), upgrade, editable, verbose, yes)
    if not installed:
        click.echo(f"{target} is already installed; nothing to do (use -U to upgrade it).")
        return
    _say_installed(target, installed)


def _pip_install(target: str, spec: str, upgrade: bool, editable: bool, verbose: bool, yes: bool,
                 ) -> list[tuple[str, str]]:
    """Run pip (asking first for a remote target); the distributions it installed, or a one-line
    error that says whether pip changed anything before it failed."""
    local = _looks_like_path(target.strip())
    before = installed_distributions()
    with tempfile.TemporaryDirectory(prefix="lmassist-install-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--report", str(report)]
        version = _lmassist_version()
        if version and canonical(Path(target).name) != "lmassist":
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text(f"lmassist=={version}\n", encoding="utf-8")
            args += ["-c", str(constraints)]
        if upgrade:
            args.append("--upgrade")
        args += ["-e", spec] if editable else [spec]
        click.echo(f"Will run: {shlex.join(pip_command(args))}", err=True)
        if not local:
            _confirm_remote(target, yes)
        click.echo(f"Installing {target}…", err=True)
        proc = _pip(args, verbose=verbose)
        if proc.returncode != 0:
            changed = _changes(before, installed_distributions())
            reason = pip_error((proc.stdout or "") + "\n" + (proc.stderr or "")) if not verbose else "see pip's output above"
            if changed:
                raise LMAssistError(f"cannot install {target}: {reason}; pip stopped part-way, changed: {', '.join(changed)}")
            hint = "" if verbose else " (run with -v for pip's output)"
            raise LMAssistError(f"cannot install {target}: {reason}; nothing was changed{hint}")
        return _report_installs(report)


def _say_installed(target: str, installed: list[tuple[str, str]]) -> None:
    """One line per plugin installed (with its hooks, or why it did not load), then the rest."""
    plugins = plugin_distributions()
    new_plugins = {canonical(n): v for n, v in installed if canonical(n) in plugins}
    others = [f"{n} {v}" for n, v in installed if canonical(n) not in plugins]
    if not new_plugins:
        click.echo(f"Installed {', '.join(others)}.")
        click.echo(
            f"Warning: {target} declares no '{ENTRY_POINT_GROUP}' entry point, so it is not an lmassist plugin; "
            "remove it with pip if it was a mistake.",
            err=True,
        )
        return
    status = _plugin_status(set(new_plugins))
    for name, version in sorted(new_plugins.items()):
        row = status.get(name)
        if row is None:
            allowed = os.environ.get("LMASSIST_LOAD_PLUGINS")
            why = "LMASSIST_LOAD_PLUGINS does not list it" if allowed is not None else "it did not load"
            click.echo(f"Installed plugin {name} {version}, but {why}.")
        elif row.get("error") or row.get("warnings"):
            click.echo(f"Installed plugin {name} {version}.")
            for warning in row.get("warnings") or [row["error"]]:
                click.echo(f"Warning: {warning} (remove it with: lmassist uninstall {name})", err=True)
        else:
            hooks = ", ".join(row.get("hooks") or []) or "no hooks"
            click.echo(f"Installed plugin {name} {version} ({hooks}).")
    if others:
        click.echo(f"Also installed: {', '.join(others)}.")


@click.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-v", "--verbose", is_flag=True, help="Show pip's own output.")
def uninstall(name: str, yes: bool, verbose: bool) -> None:
    """Remove an installed plugin (a distribution with an 'lmassist' entry point).

    lmassist itself and the packages it needs are never removed this way.

    \b
    Example:
      lmassist uninstall lmassist-proofread -y
    """
    key = canonical(name)
    if key == "lmassist":
        raise LMAssistError("refusing to uninstall lmassist itself; use pip if you really mean it")
    if key in _protected():
        raise LMAssistError(f"refusing to uninstall {name}: lmassist needs it to run")
    dists = installed_distributions()
    if key not in dists:
        plugins = ", ".join(sorted(plugin_distributions())) or "none"
        raise LMAssistError(f"{name} is not installed; installed plugins: {plugins}")
    if key not in plugin_distributions():
        raise LMAssistError(
            f"{name} is not an lmassist plugin (it declares no '{ENTRY_POINT_GROUP}' entry point); "
            "'lmassist uninstall' only removes plugins"
        )
    version = dists[key]
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise LMAssistError(f"confirm with -y to uninstall {name} without a prompt")
        click.confirm(f"Uninstall {name} {version}?", abort=True)
    proc = _pip(["uninstall", "-y", name], verbose=verbose)
    if proc.returncode != 0:
        reason = pip_error((proc.stdout or "") + "\n" + (proc.stderr or "")) if not verbose else "see pip's output above"
        raise LMAssistError(f"cannot uninstall {name}: {reason}")
    if key in installed_distributions():
        # pip declines to touch packages outside its environment (a user or system site) and exits 0.
        out = pip_error((proc.stdout or "") + "\n" + (proc.stderr or "")) if proc.stdout or proc.stderr else ""
        raise LMAssistError(f"cannot uninstall {name}: pip left it in place{': ' + out if out else ''}")
    click.echo(f"Uninstalled {name} {version}.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(install)
    cli.add_command(uninstall)
