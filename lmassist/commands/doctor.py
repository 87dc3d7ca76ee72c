"""``lmassist doctor``: what a bug report needs, in one command people can paste.

It also answers the question a silent crash leaves open — does llama.cpp run here? — by loading a
model and decoding with it in a child process, so that a native crash becomes one line in the
report rather than the end of it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from lmassist import __version__, hookimpl
from lmassist.backends import llamacpp_check as lc
from lmassist.commands.common import console, get_registry, human_size, model_option
from lmassist.config import paths
from lmassist.errors import LMAssistError
from lmassist.system import available_cpus, free_cores, others_busy_now, physical_cores

PACKAGES = ("llama-cpp-python", "torch", "transformers", "textual", "rich", "click", "pluggy", "platformdirs", "psutil")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Hardware")):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _folder_size(folder: Path) -> int | None:
    if not folder.is_dir():
        return None
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _llamacpp_report(reg: Any, model: str | None, check: bool) -> dict[str, Any]:
    """llama.cpp's build, what it finds on this CPU, and whether a model runs here (in a child)."""
    if _version("llama-cpp-python") is None:
        return {"installed": False}
    info = lc.system_info()
    setting = str(reg.settings.get("llamacpp.extra_buffers", "auto") or "auto")
    report: dict[str, Any] = {
        "installed": True,
        "system_info": info,
        "crash_prone_features": lc.crash_prone(info),
        "extra_buffers_setting": setting,
        "extra_buffers": lc.use_extra_buffers(setting, info),
    }
    if not check:
        return report
    spec = reg.resolve(model or reg.settings.default_model)
    if spec.backend != "llamacpp":
        raise LMAssistError(f"doctor checks llama.cpp models; {spec.full_name} is a {spec.backend} model")
    if not spec.installed:
        report["check"] = {"model": spec.full_name, "ok": False, "detail": "not installed"}
        return report
    result = lc.probe(spec.source, report["extra_buffers"])
    check_report: dict[str, Any] = {"model": spec.full_name, **result.__dict__}
    if not result.ok:
        check_report["line"] = result.crash_line(spec.source)
        if result.extra_buffers:
            retry = lc.probe(spec.source, False)
            check_report["without_extra_buffers"] = retry.__dict__
    report["check"] = check_report
    return report


def collect(model: str | None = None, check: bool = True) -> dict[str, Any]:
    """Everything ``doctor`` reports, as plain data."""
    reg = get_registry()
    cores = physical_cores()
    busy = others_busy_now(0.2)
    threads_setting = reg.settings.get("llamacpp.threads", "auto") or "auto"
    where = paths()
    backends = []
    for b in reg.backends.values():
        reason = b.unavailable_reason()
        backends.append({"name": b.name, "available": reason is None, "device": None if reason else b.device(),
                         "reason": reason})
    return {
        "lmassist": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": {name: _version(name) for name in PACKAGES},
        "cpu": {
            "name": _cpu_name(),
            "arch": platform.machine(),
            "logical_cpus": os.cpu_count(),
            "available_cpus": available_cpus(),
            "physical_cores": cores,
            "other_processes_busy_cores": round(busy, 2),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "threads": {
            "llamacpp.threads": threads_setting,
            "would_use_now": free_cores(cores, busy) if threads_setting == "auto" else threads_setting,
        },
        "llamacpp": _llamacpp_report(reg, model, check),
        "backends": backends,
        "folders": {
            name: {"path": str(folder), "bytes": _folder_size(folder)}
            for name, folder in (("config", where.config), ("data", where.data), ("cache", where.cache),
                                 ("models", where.models))
        },
    }


def _print(report: dict[str, Any]) -> None:
    out = console()
    from rich.markup import escape

    def echo(line: str) -> None:
        out.print(line, soft_wrap=True)  # one report line stays one line, in a terminal or a file

    echo(f"[bold]lmassist {report['lmassist']}[/] — {escape(report['python'])} on {escape(report['platform'])}")
    echo("packages: " + ", ".join(f"{k} {v}" for k, v in report["packages"].items() if v)
         + "; not installed: " + (", ".join(k for k, v in report["packages"].items() if not v) or "-"))
    cpu = report["cpu"]
    echo(f"cpu: {escape(cpu['name'])} ({cpu['arch']}), {cpu['physical_cores']} physical cores of "
         f"{cpu['available_cpus']} available CPUs; other processes busy: {cpu['other_processes_busy_cores']} cores")
    t = report["threads"]
    echo(f"threads: llamacpp.threads = {t['llamacpp.threads']} (would use {t['would_use_now']} now)")
    lc = report["llamacpp"]
    if not lc.get("installed"):
        echo("llama.cpp: not installed (pip install 'lmassist[llamacpp]')")
    else:
        echo(f"llama.cpp: {escape(lc['system_info'])}")
        prone = ", ".join(lc["crash_prone_features"]) or "none"
        echo(f"llama.cpp: known-crash features: {prone}; extra buffers {'on' if lc['extra_buffers'] else 'off'} "
             f"(llamacpp.extra_buffers = {lc['extra_buffers_setting']})")
        check = lc.get("check")
        if check and check.get("ok"):
            echo(f"llama.cpp check: [green]ok[/] — {check['model']} loaded and decoded in a child process "
                 f"({check['tokens_per_s']} tokens/s on one thread, {check['seconds']:.1f} s)")
        elif check and check.get("line"):
            echo(f"[red]llama.cpp check: {escape(check['line'])}[/]")
            retry = check.get("without_extra_buffers")
            if retry:
                verdict = "runs" if retry["ok"] else "crashes too"
                echo(f"llama.cpp check without extra buffers: {verdict}")
        elif check:
            echo(f"llama.cpp check: {check['model']}: {check.get('detail')}")
    for b in report["backends"]:
        state = f"available, {b['device']}" if b["available"] else f"unavailable: {b['reason']}"
        echo(f"backend {b['name']}: {escape(state)}")
    for name, f in report["folders"].items():
        echo(f"{name}: {escape(f['path'])} ({human_size(f['bytes']) if f['bytes'] is not None else 'absent'})")


@click.command()
@model_option
@click.option("--no-check", is_flag=True, help="Skip loading a model in a child process.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(model: str | None, no_check: bool, as_json: bool) -> None:
    """Versions, CPU features, threads, backends, folders, and whether llama.cpp runs here.

    The llama.cpp check loads the model (the default one, or -m NAME) and decodes with it in a
    child process, so that a native crash is reported in one line with the setting or build that
    avoids it. Paste the output into a bug report.

    \b
      lmassist doctor
      lmassist doctor --json > doctor.json
      lmassist doctor -m llamacpp:gemma3-270m
    """
    report = collect(model, check=not no_check)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    check = report["llamacpp"].get("check")
    if check and not check.get("ok"):
        sys.exit(1)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(doctor)
