"""``lmassist bench inhouse``: the in-house models' figures, printed rather than asserted.

Figures are ratios measured side by side in one run, because the machines are shared and noisy:

* generation: tokens/s with the KV cache against re-reading the whole context every token;
* training: a well-known minimal GPT recipe (nanoGPT's "baby GPT") run by our trainer, against the
  preset ``--size auto`` picks for the budget (and the LSTM's), each for the same wall-clock time,
  scored on the whole validation split;
* memory: peak resident memory of ``lmassist train`` with the default preset, in a fresh process.

torch and the in-house models are imported inside the functions: ``lmassist --help`` must not load them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lmassist.bench.common import DATA_DIR, dev_file, peak_rss_mb
from lmassist.commands.inhouse import checkpoint_path

REFERENCE = dict(  # the minimal GPT recipe the issue names: nanoGPT's "baby GPT" on CPU
    arch="transformer", batch_size=12, lr=1e-3, warmup_steps=100, dropout=0.0,
    model_overrides=dict(n_layer=4, n_head=4, n_embd=128, context_length=64),
)


def generation_speeds(model: Any, prompt: list[int], tokens: int) -> dict[str, float]:
    """Greedy tokens/s with and without the cache, same prompt, same tokens."""
    import torch

    from lmassist.inhouse.model import generate

    out: dict[str, float] = {}
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 decoding of a small model is fastest on one thread
    for label, cache in (("cached", True), ("uncached", False)):
        list(generate(model, prompt, 3, temperature=0, use_cache=cache))  # warm-up
        start = time.perf_counter()
        n = sum(1 for _ in generate(model, prompt, tokens, temperature=0, use_cache=cache))
        out[label] = n / (time.perf_counter() - start)
    torch.set_num_threads(before)
    return out


def run_bench(model_dir: Path, tokens: int, seconds: float, corpus: Path | None, echo: Callable[[str], None],
              ) -> None:
    """Print the generation, training-race and training-memory figures (see the module docstring)."""
    from lmassist.inhouse.checkpoint import load_checkpoint
    from lmassist.inhouse.model import context_limit

    ck = load_checkpoint(model_dir)
    prompt = ck.tokenizer.encode("ROMEO:\n") or [ck.tokenizer.start_id()]
    if context_limit(ck.model) is not None:
        speeds = generation_speeds(ck.model, prompt, tokens)
        echo(f"generation, {tokens} tokens, {model_dir.name}: KV cache {speeds['cached']:.1f} tok/s, "
             f"no cache {speeds['uncached']:.1f} tok/s, ratio {speeds['cached'] / speeds['uncached']:.2f}×")
    else:
        echo(f"generation: {model_dir.name} is recurrent; it always carries its hidden state")
    if corpus is not None and seconds > 0:
        _training_race(corpus, seconds, echo)


def _training_race(corpus: Path, seconds: float, echo: Callable[[str], None]) -> None:
    import torch

    from lmassist.inhouse.train import TrainConfig, train

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = {"reference recipe (4x4x128, ctx 64, batch 12, lr 1e-3)": TrainConfig(**REFERENCE)}
    for arch in ("transformer", "lstm"):
        cfg = TrainConfig(arch=arch, minutes=seconds / 60)
        runs[f"ours: {arch} {cfg.resolve_size(device)} (--size auto)"] = cfg
    echo(f"training on {corpus.name} ({device.type}), {seconds:.0f} s of wall-clock each, "
         "validation loss over the whole split:")
    losses = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg in runs.items():
            cfg.minutes = seconds / 60
            cfg.eval_interval = 10**9  # one validation, at the end, like the reference
            cfg.save_train_state = False
            result = train([corpus], Path(tmp) / "run", cfg, progress=False, log=lambda _: None)
            losses.append(result.final_val_loss)
            echo(f"  {label:<55} val {result.final_val_loss:.3f} nats/char  "
                 f"({result.step} steps, {result.tokens_per_s:,.0f} tok/s)")
        echo(f"  ours − reference: {losses[1] - losses[0]:+.3f} nats/char (transformer), "
             f"{losses[2] - losses[0]:+.3f} (lstm)")
        steps = "50"  # the peak comes with the first steps: data, model, optimizer state, activations
        peak = peak_rss_mb(["train", str(corpus), "--size", "small", "--steps", steps, "--quiet",
                            "--no-train-state", "--out", str(Path(tmp) / "memory")])
        echo(f"peak resident memory of 'lmassist train --size small' ({steps} steps, {device.type}): {peak:,.0f} MB")


@click.command("inhouse")
@click.option("--model", default="shakespeare", show_default=True, help="Model for the generation figures.")
@click.option("--tokens", type=int, default=500, show_default=True, help="Tokens to generate.")
@click.option("--seconds", type=float, default=100.0, show_default=True,
              help="Wall-clock budget of each training run (0 skips training).")
@click.option("--data", default=DATA_DIR, show_default=True, metavar="PATH",
              help="Training text, or a folder holding tinyshakespeare.txt. The default is relative to the "
                   "working directory (a checkout beside shared/).")
def bench_inhouse(model: str, tokens: int, seconds: float, data: str) -> None:
    """KV-cached vs uncached generation speed, and our training recipe vs a reference recipe
    for the same wall-clock time, side by side in one run."""
    corpus = dev_file(data, "tinyshakespeare.txt") if seconds > 0 else None
    run_bench(checkpoint_path(model), tokens, seconds, corpus, click.echo)


COMMANDS = (bench_inhouse,)
