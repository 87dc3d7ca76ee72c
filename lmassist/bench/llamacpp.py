"""``lmassist bench ask|buffers|conversation``: the llama.cpp backend's speed and memory figures.

``ask`` and ``buffers`` measure each configuration in a process of its own (``python -m
lmassist.bench``, :func:`measure` here); ``conversation`` runs in this one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import busy_processes, machine, median, peak_rss_mb, report, run_child
from lmassist.commands.common import console, get_registry, model_option
from lmassist.generation import GenerationOptions, LMAssistError, Message
from lmassist.system import physical_cores

PROMPT = "Explain in a few paragraphs how a bicycle works, part by part."


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


def ask_configurations(cores: int) -> dict[str, dict[str, Any]]:
    """What `bench ask` runs: raw llama-cpp-python at each thread count × OpenMP wait policy, and ours.

    OpenMP reads its wait policy once, when the library starts, so every configuration runs in a
    process of its own.
    """
    configs: dict[str, dict[str, Any]] = {"raw 1 thread": {"path": "raw", "threads": 1, "env": {}}}
    if cores > 1:
        configs[f"raw {cores} threads, spin"] = {"path": "raw", "threads": cores, "env": {}}
        configs[f"raw {cores} threads, passive"] = {
            "path": "raw", "threads": cores, "env": {"OMP_WAIT_POLICY": "PASSIVE"},
        }
    configs["ours (threads auto)"] = {"path": "ours", "threads": "auto", "env": {}}
    return configs


def _run_child(model: str, config: dict[str, Any], tokens: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return run_child([config["path"], model, str(config["threads"]), str(tokens)],
                     f"bench child ({config['path']}, {config['threads']} threads)", {**env, **config["env"]})


@click.command("ask")
@model_option
@click.option("--tokens", default=128, show_default=True, help="Tokens to generate per run.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds of every configuration.")
@click.option("--background", default=0, show_default=True, metavar="N",
              help="Busy processes to run beside every configuration (0: a quiet machine).")
@click.option("--json", "as_json", is_flag=True)
def bench_ask(model: str | None, tokens: int, rounds: int, background: int, as_json: bool) -> None:
    """Our `ask` path against raw llama-cpp-python at its best threads × OpenMP wait policy.

    Each configuration runs in a fresh process (raw: 1 thread; all cores with OpenMP's default
    spin-wait; all cores with OMP_WAIT_POLICY=PASSIVE; ours with `threads = auto`), in rounds whose
    order rotates, beside N busy processes with --background N. The ratio is ours over the best raw
    configuration. Also runs `lmassist --help` and `lmassist ask` to report their peak memory.

    \b
      lmassist bench ask                  # a quiet machine: target ours >= 0.97x the best raw
      lmassist bench ask --background 1   # one busy process beside it: target >= 0.9x
    """
    spec = get_registry().resolve(model)
    if spec.backend != "llamacpp":
        raise LMAssistError("bench ask compares against llama-cpp-python: pick a llamacpp: model")
    configs = ask_configurations(physical_cores())
    results: dict[str, dict[str, list[float]]] = {name: {"tps": [], "ttft": []} for name in configs}
    names = list(configs)
    with busy_processes(background):
        time.sleep(0.5 if background else 0)
        for i in range(rounds):
            order = names[i % len(names):] + names[: i % len(names)]  # each goes first once in a while
            for name in order:
                out = _run_child(spec.full_name, configs[name], tokens)
                results[name]["tps"].append(out["tokens_per_s"])
                results[name]["ttft"].append(out["ttft_s"])
    tps = {name: median(r["tps"]) for name, r in results.items()}
    ours_name = names[-1]
    best = max((n for n in names if n != ours_name), key=lambda n: tps[n])
    figures: dict[str, Any] = {**machine(), "model": spec.full_name, "background": background,
                               "cores": physical_cores()}
    for name in names:
        figures[f"{name}: tokens/s"] = tps[name]
    figures["best raw"] = best
    figures["ratio"] = tps[ours_name] / tps[best] if tps[best] else float("nan")
    figures["raw_ttft_ms"] = median(results[best]["ttft"]) * 1000
    figures["ours_ttft_ms"] = median(results[ours_name]["ttft"]) * 1000
    figures["ttft_diff_ms"] = figures["ours_ttft_ms"] - figures["raw_ttft_ms"]
    figures["ask_peak_rss_mb"] = peak_rss_mb(["ask", "--no-log", "-O", "max_new_tokens", "32", "Say hi"])
    figures["help_peak_rss_mb"] = peak_rss_mb(["--help"])
    report(figures, {
        "ratio": ">= 0.9" if background else ">= 0.97", "ask_peak_rss_mb": "< 400", "help_peak_rss_mb": "< 60",
    }, as_json, echo=console().print)


@click.command("buffers")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME_OR_PATH",
              help="Models to measure, repeatable (default: the default model).")
@click.option("--threads", default=1, show_default=True, help="Compute threads for every run.")
@click.option("--tokens", default=64, show_default=True, help="Tokens to generate per run.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds.")
@click.option("--portable", "portable_site", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="A folder holding a portable build of llama-cpp-python (pip install --target DIR), "
              "measured beside the installed one.")
@click.option("--json", "as_json", is_flag=True)
def bench_buffers(models: tuple[str, ...], threads: int, tokens: int, rounds: int, portable_site: str | None,
                  as_json: bool) -> None:
    """What loading without extra buffers (the AMX fallback) costs: prompt and decode speed, on vs off.

    Extra buffer types hold weights repacked for the CPU's fastest kernels (Q4_0 and Q4_K on AVX2
    and AVX-512, AMX tiles where present); without them llama.cpp uses its generic kernels. With
    --portable DIR a portable build (GGML_NATIVE=OFF) of the same version runs beside, as users who
    hit a crash anyway are told to install.

    \b
      lmassist bench buffers -m llamacpp:smollm2-135m-instruct -m llamacpp:gemma3-270m -m ./q4_0.gguf
    """
    reg = get_registry()
    paths = [m if m and Path(m).is_file() else reg.resolve(m).source for m in (models or (None,))]
    configs = [("native, extra buffers on", "on", None), ("native, extra buffers off", "off", None)]
    if portable_site:
        configs.append(("portable build", "on", portable_site))
    figures: dict[str, Any] = {**machine(), "threads": threads}
    for path in paths:
        runs: dict[str, dict[str, list[float]]] = {c[0]: {"pp": [], "tg": []} for c in configs}
        for i in range(rounds):
            for name, buffers, site in configs[i % len(configs):] + configs[: i % len(configs)]:
                env = {**os.environ, "PYTHONPATH": site} if site else None
                out = run_child(["buffers", path, buffers, str(threads), str(tokens)],
                                f"{name} on {Path(path).name}", env)
                runs[name]["pp"].append(out["prompt_tokens_per_s"])
                runs[name]["tg"].append(out["tokens_per_s"])
        base = configs[0][0]
        for name in runs:
            pp, tg = median(runs[name]["pp"]), median(runs[name]["tg"])
            figures[f"{Path(path).name} | {name}"] = (
                f"prompt {pp:.0f} tok/s ({pp / median(runs[base]['pp']):.2f}x), "
                f"decode {tg:.1f} tok/s ({tg / median(runs[base]['tg']):.2f}x)"
            )
    report(figures, {}, as_json, echo=console().print)


def _buffers_child(path: str, buffers: str, threads: int, tokens: int) -> dict[str, float]:
    import llama_cpp

    from lmassist.backends.llamacpp_check import load_llama

    llm = load_llama(llama_cpp, buffers == "on", model_path=path, n_ctx=1024, n_threads=threads,
                     n_threads_batch=threads, n_gpu_layers=0, verbose=False)
    prompt = llm.tokenize((PROMPT + " ") .encode() * 16, add_bos=True)[:256]
    llm.eval(prompt[:32])  # warm up
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    pp = len(prompt) / (time.perf_counter() - start)
    start, n = time.perf_counter(), 0
    for _ in llm.generate(prompt, temp=0.0):
        n += 1
        if n >= tokens:
            break
    return {"prompt_tokens_per_s": pp, "tokens_per_s": n / (time.perf_counter() - start)}


def measure(argv: list[str]) -> dict[str, float]:
    """One measurement in this process: ``raw|ours MODEL THREADS TOKENS`` or ``buffers PATH on|off
    THREADS TOKENS`` (what ``python -m lmassist.bench`` runs)."""
    if argv[0] == "buffers":
        return _buffers_child(argv[1], argv[2], int(argv[3]), int(argv[4]))
    path, model, threads, tokens = argv[0], argv[1], argv[2], int(argv[3])
    reg = get_registry()
    if path == "ours":
        ours = reg.load(model, threads=threads)
        opts = GenerationOptions(max_new_tokens=tokens, temperature=0.0, seed=1, repetition_penalty=1.0)
        ours.chat([Message("user", "Hi")], opts.replace(max_new_tokens=4)).result()  # warm up, as raw does
        gen = ours.chat([Message("user", PROMPT)], opts)
        gen.result()
        return {"tokens_per_s": gen.stats.tokens_per_s, "ttft_s": gen.stats.time_to_first_token_s}
    import llama_cpp

    from lmassist.backends.llamacpp import DEFAULT_N_CTX
    from lmassist.backends.llamacpp_check import load_llama, use_extra_buffers

    spec = reg.resolve(model)
    # The same extra-buffers choice as ours, so that on a crash-prone CPU raw runs at all.
    extra = use_extra_buffers(str(reg.settings.get("llamacpp.extra_buffers", "auto") or "auto"),
                              llama_cpp.llama_print_system_info().decode())
    n = int(threads)
    llm = load_llama(llama_cpp, extra, model_path=spec.source, n_ctx=DEFAULT_N_CTX, n_threads=n,
                     n_threads_batch=n, n_gpu_layers=0, verbose=False)
    _raw_stream(llm, [{"role": "user", "content": "Hi"}], 4)
    ttft, tps, _ = _raw_stream(llm, [{"role": "user", "content": PROMPT}], tokens)
    return {"tokens_per_s": tps, "ttft_s": ttft}


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
    figures = {**machine(), "model": llm.info.name, "turns": per_turn,
               "last_over_first": per_turn[-1]["ttft_ms"] / max(per_turn[0]["ttft_ms"], 1e-9)}
    report(figures, {"last_over_first": "<= 1.5"}, as_json, echo=console().print, lines=_turn_lines)


def _turn_lines(key: str, value: Any) -> list[str] | None:
    if key != "turns":
        return None
    return [f"  turn {t['turn']:>2}: prompt {t['prompt_tokens']:>5} tokens, first token {t['ttft_ms']:.1f} ms"
            for t in value]


COMMANDS = (bench_ask, bench_conversation, bench_buffers)
