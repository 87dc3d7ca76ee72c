"""A smaller copy of a model: int8 weights on disk, and magnitude pruning.

* **int8** is weight-only quantization, written here (no ``torch.ao``), in the format of
  :mod:`lmassist.inhouse.int8`: the file is about a quarter of the fp32 size.

  Loading multiplies ``q · s`` back to fp32, and the model then runs exactly as the original does.
  That is deliberate: a model this small spends its decoding time on per-operation overhead, not on
  reading its weights, so int8 arithmetic only adds work (int8 kernels and per-``forward`` casts
  were both slower than fp32, see docs/benchmarks.md). So the copy is smaller on disk and to ship;
  it is not faster, nor smaller in memory once loaded.
* **Pruning** sets the given fraction of each weight matrix's smallest-magnitude entries to zero,
  in place: the zeros are the weights, there is no mask to carry around (permanent). Dense kernels
  multiply zeros like any other number, so pruning alone changes neither the size nor the speed; it
  shows how much of a model can go before perplexity suffers.

Everything is stored in safetensors: no pickle, as for every other checkpoint.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from lmassist.errors import LMAssistError
from lmassist.inhouse import checkpoint as ckpt
from lmassist.inhouse.data import encode_ids, normalize, read_corpus, split_text
from lmassist.inhouse.evaluate import evaluate_ids
from lmassist.inhouse.int8 import quantize_state
from lmassist.inhouse.model import build_model, config_from_dict, generate
from lmassist.system import CpuSample
from lmassist.textinput import read_text_file


def prunable(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Weight matrices of linear and recurrent layers (not embeddings, nor a head tied to one)."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out = []
    for mod_name, module in model.named_modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in embeddings:
            out.append((f"{mod_name}.weight", module.weight))
        elif isinstance(module, (nn.LSTM, nn.RNN, nn.GRU)):
            out += [(f"{mod_name}.{n}", p) for n, p in module.named_parameters() if n.startswith("weight_")]
    return out


@torch.no_grad()
def prune_magnitude(model: nn.Module, amount: float) -> float:
    """Zero the ``amount`` fraction of smallest |w| in each prunable matrix; returns overall sparsity."""
    if not 0 <= amount < 1:
        raise ValueError("amount must be in [0, 1)")
    zeros = total = 0
    for _, w in prunable(model):
        k = int(amount * w.numel())
        if k > 0:
            threshold = w.abs().flatten().kthvalue(k).values
            w[w.abs() <= threshold] = 0.0
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(1, total)


# -- the optimize command's work: write the new model, measure before and after -------------------


@dataclass
class Measure:
    size_bytes: int
    tokens_per_s: float
    perplexity: float | None


@dataclass
class OptimizeReport:
    """Size, speed and perplexity of the source and the copy, and what the copy therefore is."""

    before: Measure
    after: Measure
    sparsity: float = 0.0
    notes: list[str] = field(default_factory=list)
    quantize: str | None = None
    prune: float = 0.0
    speed_ratios: list[float] = field(default_factory=list)  # after / before, one per interleaved round
    others_busy: float | None = None  # cores other processes kept busy while speed was measured

    @property
    def size_ratio(self) -> float:
        return self.after.size_bytes / max(1, self.before.size_bytes)

    @property
    def speed(self) -> float:
        """The median of the per-round speed ratios (a round compares the two under the same load)."""
        if self.speed_ratios:
            return statistics.median(self.speed_ratios)
        return self.after.tokens_per_s / max(self.before.tokens_per_s, 1e-9)

    @property
    def perplexity_ratio(self) -> float | None:
        b, a = self.before.perplexity, self.after.perplexity
        return a / b if a and b else None

    def lines(self) -> list[str]:
        def ppl(m: Measure) -> str:
            return f"{m.perplexity:.3f}" if m.perplexity is not None else "n/a"

        b, a = self.before, self.after
        rows = [
            f"{'':<14}{'before':>12}{'after':>12}{'ratio':>9}",
            f"{'size (KB)':<14}{b.size_bytes / 1024:>12.1f}{a.size_bytes / 1024:>12.1f}{self.size_ratio:>9.2f}",
            f"{'tokens/s':<14}{b.tokens_per_s:>12.1f}{a.tokens_per_s:>12.1f}{self.speed:>9.2f}",
        ]
        ratio = f"{self.perplexity_ratio:>9.3f}" if self.perplexity_ratio else ""
        rows.append(f"{'perplexity':<14}{ppl(b):>12}{ppl(a):>12}{ratio}")
        load = f"; other processes kept {self.others_busy:.1f} cores busy" if self.others_busy is not None else ""
        spread = (f", ratio per round {min(self.speed_ratios):.2f}–{max(self.speed_ratios):.2f}"
                  if len(self.speed_ratios) > 1 else "")
        n = max(1, len(self.speed_ratios))
        rows.append(f"tokens/s: median of {n} round{'s' if n > 1 else ''} decoding both in lockstep, one thread"
                    f"{spread}{load}")
        if self.sparsity:
            rows.append(f"sparsity of the pruned matrices: {self.sparsity:.1%}")
        return rows + self.notes + [self.verdict()]

    def verdict(self) -> str:
        """One sentence that says what the copy is, from the figures just measured."""
        what = []
        if self.quantize == "int8":
            what.append("int8 weights on disk, decoded to fp32 when loaded")
        if self.prune:
            what.append(f"{self.prune:.0%} of each weight matrix set to zero")
        speed, ratios = self.speed, self.speed_ratios or [self.speed]
        if 0.97 <= speed <= 1.03 or (len(ratios) > 1 and min(ratios) <= 1 <= max(ratios)):
            pace = f"the same speed within this machine's noise (×{speed:.2f})"
        else:
            pace = f"×{speed:.2f} the speed"
        facts = [f"{self.size_ratio:.2f}× the size on disk", pace]
        if self.perplexity_ratio:
            facts.append(f"perplexity ×{self.perplexity_ratio:.3f}")
        memory = "; once loaded it uses the same memory as the original" if self.quantize else ""
        return f"the copy: {', '.join(what)}: {', '.join(facts)}{memory}"


def compare_speed(
    before: nn.Module, after: nn.Module, tokens: int = 200, prompt: list[int] | None = None, rounds: int = 3
) -> tuple[float, float, list[float], float | None]:
    """Tokens/s of both models decoding in lockstep, one token each in turn, one thread.

    On a shared machine the load changes from one second to the next; alternating token by token
    puts both models under the same load, so the ratio stays meaningful even where the absolute
    figures do not. Returns the median tokens/s of each over ``rounds`` rounds, the ratio (after / before) of every round, and how many cores other
    processes kept busy meanwhile (None where that cannot be read).
    """
    prompt = prompt or [0]
    try:
        first: Any = CpuSample.now()
    except ImportError:  # psutil missing: measure anyway, say nothing about the load
        first = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the backend decodes: one thread is fastest for batch-1 decoding
    speeds: list[tuple[float, float]] = []
    try:
        for model in (before, after):  # warm-up
            list(generate(model, prompt, 5, temperature=0))
        for i in range(rounds):
            streams = [generate(before, prompt, tokens, temperature=0), generate(after, prompt, tokens, temperature=0)]
            spent = [0.0, 0.0]
            order = (0, 1) if i % 2 == 0 else (1, 0)  # neither always goes first
            for _ in range(tokens):
                for j in order:
                    start = time.perf_counter()
                    next(streams[j], None)
                    spent[j] += time.perf_counter() - start
            speeds.append((tokens / spent[0], tokens / spent[1]))
    finally:
        torch.set_num_threads(threads)
    busy = CpuSample.now().others_busy(first) if first is not None else None
    ratios = [a / max(b, 1e-9) for b, a in speeds]
    return (statistics.median(b for b, _ in speeds), statistics.median(a for _, a in speeds), ratios, busy)


def validation_ids(ck: ckpt.Checkpoint, eval_file: str | None) -> tuple[Any, int, str] | None:
    """Token ids to measure perplexity on: ``eval_file``, or the model's own validation split."""
    lowercase = bool(ck.config.get("training", {}).get("recipe", {}).get("lowercase", False))
    if eval_file:
        text = normalize(read_text_file(eval_file, bounded=False), lowercase)
        where = str(eval_file)
    else:
        files = ck.config.get("training", {}).get("data", {}).get("files") or []
        if not files or not all(Path(f).exists() for f in files):
            return None
        text, _ = read_corpus(files, lowercase)
        text = split_text(text)[1]
        where = "the validation split"
    ids = encode_ids(ck.tokenizer, text)
    return (ids, len(text), where) if len(ids) >= 2 else None


def optimize_checkpoint(
    source: str | Path,
    target: str | Path,
    quantize: str | None = "int8",
    prune: float = 0.0,
    eval_file: str | None = None,
    speed_tokens: int = 200,
    rounds: int = 5,
) -> OptimizeReport:
    """Write an optimized copy of ``source`` to ``target`` and measure both side by side."""
    if quantize not in (None, "int8"):
        raise LMAssistError(f"unknown quantization {quantize!r}; only int8 is supported")
    source, target = Path(source), Path(target)
    ck = ckpt.load_checkpoint(source, "cpu")
    if ck.quantization:
        raise LMAssistError(f"{source.name} is already quantized; optimize the fp32 model it came from")
    data = validation_ids(ck, eval_file)
    prompt = [ck.tokenizer.start_id()]

    model = build_model(config_from_dict(ck.config["model"]))
    ckpt.load_weights(model, ckpt.read_tensors(source / ckpt.WEIGHTS), source / ckpt.WEIGHTS)
    sparsity = prune_magnitude(model, prune) if prune > 0 else 0.0
    weights = ckpt.unique_state(model.state_dict())
    if quantize == "int8":
        weights = quantize_state(weights)
    config = {k: v for k, v in ck.config.items() if k not in ("format", "format_version", "tokenizer")}
    config.update(quantization=quantize, pruned=prune, optimized_from=str(source))
    ckpt.save_checkpoint(target, config, ck.tokenizer, weights, ck.history)
    copy = ckpt.load_checkpoint(target).model  # the copy as users will load it

    def perplexity(m: nn.Module) -> float | None:
        return evaluate_ids(m, data[0], characters=data[1]).perplexity if data else None

    b_speed, a_speed, ratios, busy = compare_speed(ck.model, copy, speed_tokens, prompt, rounds)
    report = OptimizeReport(
        Measure(ckpt.folder_size(source), b_speed, perplexity(ck.model)),
        Measure(ckpt.folder_size(target), a_speed, perplexity(copy)),
        sparsity, quantize=quantize, prune=prune, speed_ratios=ratios, others_busy=busy,
    )
    if data is None:
        report.notes.append("perplexity: the training text is not available; pass --file to measure it")
    else:
        report.notes.append(f"perplexity measured on {data[2]} ({len(data[0]):,} tokens)")
    if prune and not quantize:
        report.notes.append("pruned weights are stored densely: the file keeps its size")
    return report
