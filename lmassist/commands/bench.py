"""``lmassist bench``: speed and memory figures, measured side by side in one run.

The machines we run on are shared and noisy, so each benchmark interleaves the things it compares
and reports ratios, not absolute numbers alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import click

from lmassist import hookimpl
from lmassist.commands.common import console, get_registry, model_option
from lmassist.generation import GenerationOptions, LMAssistError, Message

PROMPT = "Explain in a few paragraphs how a bicycle works, part by part."


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _raw_stream(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, float, int]:
    """The library's own streaming chat call: (time to first token, tokens/s, tokens)."""
    start = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True, seed=1
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1
            if first is None:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    first = first or total
    return first, (n - 1) / (total - first) if n > 1 and total > first else 0.0, n


@click.command("ask")
@model_option
@click.option("--tokens", default=128, show_default=True, help="Tokens to generate per run.")
@click.option("--rounds", default=6, show_default=True, help="Interleaved rounds of raw vs ours.")
@click.option("--json", "as_json", is_flag=True)
def bench_ask(model: str | None, tokens: int, rounds: int, as_json: bool) -> None:
    """Our streaming `ask` path against the raw llama-cpp-python stream, on the same model and prompt.

    Also runs `lmassist --help` and `lmassist ask` as subprocesses to report their peak memory.
    """
    reg = get_registry()
    spec = reg.resolve(model)
    if spec.backend != "llamacpp":
        raise LMAssistError("bench ask compares against llama-cpp-python: pick a llamacpp: model")
    ours = reg.load(spec.full_name)
    raw = ours._llm  # the same Llama object: the comparison is about our code path alone
    messages = [Message("user", PROMPT)]
    opts = GenerationOptions(max_new_tokens=tokens, temperature=0.0, seed=1, repetition_penalty=1.0)
    results: dict[str, list[float]] = {"raw_tps": [], "ours_tps": [], "raw_ttft": [], "ours_ttft": []}
    def run_raw() -> None:
        raw.reset()
        ttft, tps, _ = _raw_stream(raw, [m.to_dict() for m in messages], tokens)
        results["raw_ttft"].append(ttft)
        results["raw_tps"].append(tps)

    def run_ours() -> None:
        raw.reset()
        gen = ours.chat(messages, opts)
        gen.result()
        results["ours_ttft"].append(gen.stats.time_to_first_token_s or 0.0)
        results["ours_tps"].append(gen.stats.tokens_per_s)

    for i in range(rounds):  # alternate which goes first, so neither gains from running second
        for run in (run_raw, run_ours) if i % 2 == 0 else (run_ours, run_raw):
            run()
    figures = {
        "model": spec.full_name,
        "raw_tokens_per_s": _median(results["raw_tps"]),
        "ours_tokens_per_s": _median(results["ours_tps"]),
        "ratio": _median(results["ours_tps"]) / _median(results["raw_tps"]),
        "raw_ttft_ms": _median(results["raw_ttft"]) * 1000,
        "ours_ttft_ms": _median(results["ours_ttft"]) * 1000,
        "ask_peak_rss_mb": peak_rss_mb(["ask", "--no-log", "-O", "max_new_tokens", "32", "Say hi"]),
        "help_peak_rss_mb": peak_rss_mb(["--help"]),
    }
    figures["ttft_diff_ms"] = figures["ours_ttft_ms"] - figures["raw_ttft_ms"]
    _report(figures, as_json, targets={"ratio": ">= 0.97", "ttft_diff_ms": "<= 20", "ask_peak_rss_mb": "< 400", "help_peak_rss_mb": "< 60"})


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of ``lmassist ARGS`` in a fresh process, from the kernel's accounting."""
    code = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "lmassist", *args],
        capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip()) / 1024


@click.command("conversation")
@model_option
@click.option("--turns", default=10, show_default=True)
@click.option("--tokens", default=48, show_default=True, help="Tokens per reply.")
@click.option("--json", "as_json", is_flag=True)
def bench_conversation(model: str | None, turns: int, tokens: int, as_json: bool) -> None:
    """Time to first token, turn by turn, as a conversation grows (prefix reuse keeps it flat)."""
    llm = get_registry().load(model)
    opts = GenerationOptions(max_new_tokens=tokens, temperature=0.0, seed=1)
    questions = [
        "Tell me about the moon.", "How far away is it?", "Who walked on it first?", "What did they bring back?",
        "Why is it grey?", "Does it have water?", "What are its phases?", "How do tides work?",
        "Could people live there?", "Summarize what we discussed.",
    ]
    messages: list[Message] = []
    per_turn = []
    for i in range(turns):
        messages.append(Message("user", questions[i % len(questions)]))
        gen = llm.chat(messages, opts)
        messages.append(Message("assistant", gen.result()))
        per_turn.append({"turn": i + 1, "prompt_tokens": gen.stats.prompt_tokens,
                         "ttft_ms": round((gen.stats.time_to_first_token_s or 0) * 1000, 1)})
    figures = {"model": llm.info.name, "turns": per_turn,
               "last_over_first": per_turn[-1]["ttft_ms"] / max(per_turn[0]["ttft_ms"], 1e-9)}
    _report(figures, as_json, targets={"last_over_first": "<= 1.5"})


def _report(figures: dict[str, Any], as_json: bool, targets: dict[str, str]) -> None:
    figures = {"python": sys.version.split()[0], "cpus": os.cpu_count(), **figures}
    if as_json:
        click.echo(json.dumps({**figures, "targets": targets}, indent=2))
        return
    out = console()
    for key, value in figures.items():
        if key == "turns":
            for t in value:
                out.print(f"  turn {t['turn']:>2}: prompt {t['prompt_tokens']:>5} tokens, first token {t['ttft_ms']:.1f} ms")
            continue
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        target = f"   (target {targets[key]})" if key in targets else ""
        out.print(f"{key:>20}: {shown}{target}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    group = cli.commands.get("bench")
    if isinstance(group, click.Group):
        group.add_command(bench_ask)
        group.add_command(bench_conversation)
