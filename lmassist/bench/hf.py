"""``lmassist bench hf``: the transformers backend against raw transformers, in one run.

Two figures, each a ratio of things measured side by side (the machines are shared and noisy):
our streamed tokens/s against a raw ``model.generate`` call on the same model, prompt and settings
(rounds interleaved, medians compared), and, for a GGUF model, a load from our safetensors cache
against the first load that converts the GGUF.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import click

from lmassist.bench.common import busy_processes, machine, median, report
from lmassist.commands.common import get_registry, load_options
from lmassist.generation import GenerationOptions, LMAssistError, Message

# Long enough that the default model writes past 128 tokens before its end-of-turn token.
PROMPT = ("Explain in a few paragraphs how a bicycle works, part by part: the frame, the wheels, the chain, "
          "the gears and the brakes.")
DEFAULT_MODEL = "hf:smollm2-135m-instruct"


def _raw_generate(model: Any, messages: list[Message], opts: GenerationOptions) -> tuple[float, int]:
    """transformers' own ``generate`` on the prompt our chat path builds: (tokens/s, tokens)."""
    import torch

    ids = model.encode_messages(messages)
    inputs = model.input_tensors(ids)
    config = model.generation_config(opts, opts.max_new_tokens)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.hf_model.generate(**inputs, generation_config=config)
    elapsed = time.perf_counter() - start
    new = out[0, len(ids):].tolist()
    if new and new[-1] in model.eos_token_ids:  # we do not count the end-of-sequence token as output
        new = new[:-1]
    return len(new) / elapsed, len(new)


def _timed_load(name: str, settings: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    model = get_registry().load(name, **settings)
    return time.perf_counter() - start, model


@click.command("hf")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True, metavar="NAME", help="An hf: model.")
@load_options
@click.option("--tokens", default=128, show_default=True, help="Tokens to generate per run.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds of raw vs ours.")
@click.option("--threads", type=click.IntRange(min=1),
              help="torch threads for both sides (default: raw gets torch's own choice, ours hf.threads=auto).")
@click.option("--background", default=0, show_default=True, metavar="N", type=click.IntRange(min=0),
              help="Busy processes to run beside both sides (0: whatever the machine is doing).")
@click.option("--no-load", is_flag=True, help="Skip the GGUF first-load vs cached-load figure.")
@click.option("--json", "as_json", is_flag=True)
def bench_hf(
    model: str, device: str | None, dtype: str | None, trust_remote_code: bool | None,
    tokens: int, rounds: int, threads: int | None, background: int, no_load: bool, as_json: bool,
) -> None:
    """Our streamed tokens/s vs raw model.generate, and cached vs first GGUF load time.

    \b
    Raw is `model.generate` on the same model, prompt and greedy settings, with torch's own thread
    count (all cores) unless --threads fixes both sides; ours streams token by token with its
    threads chosen from the machine's load (hf.threads = auto). Rounds alternate which side goes
    first; medians are compared. The first load converts the GGUF in a fresh temporary cache (your
    own cache is left alone), so it costs the full conversion.
      lmassist bench hf --tokens 128                  # target: ours >= 0.95x raw
      lmassist bench hf --tokens 128 --background 1   # beside one busy process
    """
    reg = get_registry()
    spec = reg.resolve(model)
    if spec.backend != "hf":
        raise LMAssistError("bench hf measures the transformers backend: pick an hf: model")
    import torch  # imported before any timing, so neither load pays for it
    import transformers  # noqa: F401

    raw_threads = threads or torch.get_num_threads()  # what raw transformers uses as it comes
    settings = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code, "threads": threads}
    figures: dict[str, Any] = {**machine(), "model": spec.full_name, "background": background}
    targets = {"stream_ratio": ">= 0.95"}
    with busy_processes(background):
        ours_model = None
        if spec.details.get("kind") == "gguf" and not no_load:
            figures.update(_load_figures(spec.full_name, settings))
            targets["load_ratio"] = "<= 0.2"
            ours_model = figures.pop("_model")
        if ours_model is None:
            ours_model = reg.load(spec.full_name, **settings)
        try:
            figures.update(_stream_figures(ours_model, tokens, rounds, raw_threads))
        finally:
            ours_model.close()
        figures["load_average_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    report(figures, targets, as_json, width=24)


def _load_figures(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    saved = os.environ.get("LMASSIST_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="lmassist-bench-hf-") as cache:
        os.environ["LMASSIST_CACHE_DIR"] = cache
        try:
            first_s, first = _timed_load(name, settings)
            first.close()
            cached_s, model = _timed_load(name, settings)
        finally:
            if saved is None:
                os.environ.pop("LMASSIST_CACHE_DIR", None)
            else:
                os.environ["LMASSIST_CACHE_DIR"] = saved
    return {"first_load_s": first_s, "cached_load_s": cached_s, "load_ratio": cached_s / first_s, "_model": model}


def _stream_figures(ours_model: Any, tokens: int, rounds: int, raw_threads: int) -> dict[str, Any]:
    import torch

    messages = [Message("user", PROMPT)]
    opts = GenerationOptions(max_new_tokens=tokens, temperature=0.0, repetition_penalty=1.0, seed=1)
    raw_tps: list[float] = []
    ours_tps: list[float] = []
    ours_decode: list[float] = []
    ours_threads: set[int] = set()
    counts = []

    def raw() -> tuple[float, int]:
        torch.set_num_threads(raw_threads)  # ours may have changed it; raw gets torch's choice back
        return _raw_generate(ours_model, messages, opts)

    def ours() -> tuple[float, int]:
        gen = ours_model.chat(messages, opts)
        gen.result()
        ours_decode.append(gen.stats.tokens_per_s)
        ours_threads.add(ours_model.threads)
        return gen.stats.generated_tokens / gen.stats.total_s, gen.stats.generated_tokens

    warm = opts.replace(max_new_tokens=4)  # warm-up for both paths
    ours_model.chat(messages, warm).result()
    torch.set_num_threads(raw_threads)
    _raw_generate(ours_model, messages, warm)
    for i in range(rounds):
        if i % 2 == 0:  # alternate who goes first: a burst of load should not always hit one side
            (r, n_raw), (o, n_ours) = raw(), ours()
        else:
            (o, n_ours), (r, n_raw) = ours(), raw()
        raw_tps.append(r)
        ours_tps.append(o)
        counts.append((n_raw, n_ours))
    figures: dict[str, Any] = {
        "device": ours_model.info.device,
        "dtype": ours_model.info.details.get("dtype"),
        "raw_torch_threads": raw_threads,
        "ours_torch_threads": ",".join(str(t) for t in sorted(ours_threads)),
        "tokens": counts[-1][1],
        "raw_tokens_per_s": median(raw_tps),
        "ours_tokens_per_s": median(ours_tps),
        "ours_decode_tokens_per_s": median(ours_decode),
        "stream_ratio": median(ours_tps) / median(raw_tps),
        "rounds_raw": [round(x, 2) for x in raw_tps],
        "rounds_ours": [round(x, 2) for x in ours_tps],
    }
    if any(a != b for a, b in counts):
        figures["note"] = f"raw and ours generated different token counts: {counts}"
    return figures


COMMANDS = (bench_hf,)
