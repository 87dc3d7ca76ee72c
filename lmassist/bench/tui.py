"""``lmassist bench tui``: how fast the chat app shows up, and how responsive it stays while a reply streams.

Two figures, each measured the way the issue defines it:

* time to first frame: from launching ``lmassist`` in a 120x40 tmux terminal to a screen with at
  least five lines of text, before the model is loaded. A bare Textual app (a header, a text, a
  footer) is timed the same way in the same run, interleaved, so the ratio means something on a
  shared, noisy machine: the two are printed side by side with their ratio, beside the target as a
  ratio too. ``--tool PATH`` times with an outside first-frame tool instead (one that prints
  ``first frame s: N``); without it the same method runs from here.
* event-loop lag while a reply streams: the app runs headless in this process on the real model;
  a probe sleeps 10 ms at a time on the app's event loop and records how late it wakes up. The 99th
  percentile over the reply is the figure.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import machine, median, report
from lmassist.commands.common import model_option
from lmassist.store import Store

BARE_APP = '''
from textual.app import App
from textual.widgets import Footer, Header, Static


class Bare(App):
    BINDINGS = [("ctrl+q", "quit", "Quit")]

    def compose(self):
        yield Header()
        yield Static("A bare Textual app: a header, a text and a footer.\\n" * 4)
        yield Footer()


Bare().run()
'''
PROMPT = "Write a detailed guide, with headings and lists, to growing tomatoes at home."
# The target, as set on an idle machine, and the bare app's time there: the ratio is what carries over.
TARGET_FIRST_FRAME_S = 0.35
BARE_FIRST_FRAME_IDLE_S = 0.23


def _first_frame_tmux(command: str, timeout: float = 10.0) -> float | None:
    """Seconds until a 120x40 tmux pane shows five lines with text (the shared tool's method)."""
    # A fresh server per round: reusing one name races the previous round's server still exiting.
    socket = f"lmassist-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    base = ["tmux", "-L", socket]
    start = time.perf_counter()
    subprocess.run([*base, "new-session", "-d", "-s", "ff", "-x", "120", "-y", "40", command], check=True)
    try:
        while time.perf_counter() - start < timeout:
            time.sleep(0.05)
            shown = subprocess.run([*base, "capture-pane", "-p", "-t", "ff"], capture_output=True, text=True).stdout
            if sum(1 for line in shown.splitlines() if any(c.isalnum() for c in line)) >= 5:
                return time.perf_counter() - start
        return None
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)


def first_frame(command: str, tool: str | None = None) -> float | None:
    """One measurement, with the outside tool when one is given, else with tmux from here."""
    if tool is not None:
        out = subprocess.run([tool, command], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if line.startswith("first frame s:"):
                try:
                    return float(line.split(":", 1)[1])
                except ValueError:
                    return None
        return None
    return _first_frame_tmux(command)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure_first_frames(rounds: int, tool: str | None = None) -> dict[str, Any]:
    if tool is None and shutil.which("tmux") is None:
        return {"first_frame_error": "tmux is not installed (apt-get install -y tmux)"}
    with tempfile.TemporaryDirectory(prefix="lmassist-bench-tui-") as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE_APP)
        ours_cmd = f"{shlex.quote(sys.executable)} -m lmassist"
        bare_cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(bare))}"
        ours: list[float] = []
        base: list[float] = []
        for _ in range(rounds):  # interleaved, so both see the same load on the machine
            for command, into in ((bare_cmd, base), (ours_cmd, ours)):
                seconds = first_frame(command, tool)
                if seconds is not None:
                    into.append(seconds)
    figures: dict[str, Any] = {
        "first_frame_method": tool or "tmux (built in)",
        "first_frame_s": median(ours) if ours else None,
        "bare_textual_first_frame_s": median(base) if base else None,
        "first_frame_runs_s": ours,
        "bare_runs_s": base,
    }
    if ours and base:
        figures["first_frame_ratio"] = figures["first_frame_s"] / figures["bare_textual_first_frame_s"]
        paired = [o / b for o, b in zip(ours, base, strict=False) if b > 0]
        figures["first_frame_round_ratio"] = median(paired) if paired else None
    return figures


def first_frame_summary(figures: dict[str, Any]) -> list[str]:
    """The first-frame figures side by side: ours, the bare app's, their ratio, and the target's ratio."""
    ours, bare = figures.get("first_frame_s"), figures.get("bare_textual_first_frame_s")
    if ours is None or bare is None:
        return [f"first frame: {figures.get('first_frame_error', 'no measurement')}"]
    runs = len(figures.get("first_frame_runs_s", []))
    target_ratio = TARGET_FIRST_FRAME_S / BARE_FIRST_FRAME_IDLE_S
    return [
        f"first frame, median of {runs} interleaved runs each:",
        f"  lmassist {ours:.2f} s | bare Textual app {bare:.2f} s | ratio {figures['first_frame_ratio']:.2f}"
        f" (median of the rounds' ratios {figures['first_frame_round_ratio']:.2f})",
        f"  target: <= {TARGET_FIRST_FRAME_S} s where the bare app takes {BARE_FIRST_FRAME_IDLE_S} s,"
        f" a ratio <= {target_ratio:.2f}; on this machine now that is <= {bare * target_ratio:.2f} s",
    ]


async def _lag_while_streaming(model: str | None, tokens: int, threads: int | None) -> dict[str, Any]:
    from lmassist.tui.app import LMAssistApp  # Textual: only when the lag is measured
    from lmassist.tui.session import ModelHost

    host = ModelHost(load_settings={"threads": threads} if threads else None)
    scratch = tempfile.TemporaryDirectory(prefix="lmassist-bench-tui-")
    store = Store(Path(scratch.name) / "history.db")  # the benchmark's chat stays out of the user's history
    app = LMAssistApp(model=model, host=host, store=store)
    lags: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        chat = app.chat
        deadline = time.monotonic() + 300
        while not chat.model_ready:
            if chat.status.state == "error" or time.monotonic() > deadline:
                raise click.ClickException("the model did not load; see 'lmassist models list'")
            await pilot.pause(0.05)
        idle: list[float] = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # the same probe with nothing streaming: the machine's noise
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            idle.append(max(0.0, time.perf_counter() - before - 0.01))
        chat.session.set_settings({"options": {"max_new_tokens": tokens, "temperature": 0.7, "seed": 1}})
        chat.chat_input.text = PROMPT
        turns = len(chat.views())
        # Not awaited, and asyncio.sleep rather than pilot.pause: both wait for the screen to go idle,
        # which it does only once the reply has streamed, and the probe must run while it streams.
        press = asyncio.ensure_future(pilot.press("enter"))
        while not chat.busy and len(chat.views()) < turns + 2:
            await asyncio.sleep(0.01)
        period = 0.01
        while chat.busy:  # the probe: how late does a 10 ms sleep wake up on the UI's loop?
            before = time.perf_counter()
            await asyncio.sleep(period)
            if chat.status.state == "generating":
                lags.append(max(0.0, time.perf_counter() - before - period))
        await press
        reply = chat.views()[-1].turn
        stats = reply.stats or {}
    host.close()
    store.close()
    scratch.cleanup()
    return {
        "model": reply.model,
        "reply_tokens": stats.get("generated_tokens"),
        "reply_tokens_per_s": stats.get("tokens_per_s"),
        "lag_samples": len(lags),
        "lag_p50_ms": _percentile(lags, 50) * 1000,
        "lag_p99_ms": _percentile(lags, 99) * 1000,
        "lag_max_ms": max(lags) * 1000 if lags else float("nan"),
        "idle_lag_p99_ms": _percentile(idle, 99) * 1000,
    }


@click.command("tui")
@model_option
@click.option("--rounds", default=5, show_default=True, help="First-frame runs of each app, interleaved.")
@click.option("--tokens", default=256, show_default=True, help="Length of the streamed reply for the lag figure.")
@click.option("--threads", type=int, help="llama.cpp threads for the lag run (default: the backend's).")
@click.option("--skip-lag", is_flag=True, help="Only time the first frame.")
@click.option("--tool", type=click.Path(exists=True, dir_okay=False, resolve_path=True), metavar="PATH",
              help="An outside first-frame tool to time both apps with (run as 'PATH COMMAND', it prints "
              "'first frame s: N'). Without it: the same method from here, a 120x40 tmux pane until five "
              "lines show text.")
@click.option("--json", "as_json", is_flag=True)
def bench_tui(model: str | None, rounds: int, tokens: int, threads: int | None, skip_lag: bool, tool: str | None,
              as_json: bool) -> None:
    """Time to the chat app's first frame (against a bare Textual app) and UI lag while a reply streams."""
    figures: dict[str, Any] = machine()
    figures.update(measure_first_frames(rounds, tool))
    if not skip_lag:
        figures.update(asyncio.run(_lag_while_streaming(model, tokens, threads)))
    targets = {"first_frame_s": f"<= {TARGET_FIRST_FRAME_S} (bare Textual app: {BARE_FIRST_FRAME_IDLE_S} on an idle machine)",
               "first_frame_ratio": f"<= {TARGET_FIRST_FRAME_S / BARE_FIRST_FRAME_IDLE_S:.2f}", "lag_p99_ms": "<= 50"}
    if not as_json:
        for line in first_frame_summary(figures):
            click.echo(line)
    report(figures, targets, as_json, width=28, lines=_runs_line)


def _runs_line(key: str, value: Any) -> list[str] | None:
    """Each run's seconds, two decimals apiece."""
    if not key.endswith("_runs_s"):
        return None
    return [f"{key:>28}: " + " ".join(f"{v:.2f}" for v in value)]


COMMANDS = (bench_tui,)
