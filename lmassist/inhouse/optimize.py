"""Smaller, faster copies of a model: magnitude pruning and dynamic int8 quantization.

* **Pruning** sets the given fraction of each weight matrix's smallest-magnitude entries to zero,
  in place: the zeros are the weights, there is no mask to carry around (permanent).
* **int8** stores every weight matrix as int8 with one float32 scale per row (symmetric), so the
  file is about a quarter of the fp32 size. Loading rebuilds the fp32 model from those values and
  hands it to PyTorch's dynamic quantization (``quantize_dynamic``), which runs ``nn.Linear`` and
  ``nn.LSTM`` with int8 weights and activations quantized on the fly. (``nn.RNN`` has no dynamic
  int8 kernel in PyTorch; an RNN's recurrent layer keeps int8 storage but computes in fp32.)

Everything is stored in safetensors: no pickle, as for every other checkpoint.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from lmassist.generation import LMAssistError
from lmassist.inhouse import checkpoint as ckpt
from lmassist.inhouse.model import ModelConfig, build_model, config_from_dict, generate

SCALE = "__int8_scale__."  # prefix of the per-row scale stored beside each int8 matrix


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


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp32 → int8 with a per-row scale for every matrix; vectors (biases, norms) stay fp32."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.dim() == 2 and t.is_floating_point():
            scale = t.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            out[name] = torch.round(t / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[SCALE + name] = scale.float()
        else:
            out[name] = t
    return out


def dequantize_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name.startswith(SCALE):
            continue
        scale = tensors.get(SCALE + name)
        out[name] = t.float() * scale[:, None] if scale is not None else t
    return out


def dynamic_int8(model: nn.Module) -> nn.Module:
    """PyTorch dynamic quantization of the Linear and LSTM layers (int8 weights, CPU kernels)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    spec = {nn.Linear: per_channel_dynamic_qconfig, nn.LSTM: default_dynamic_qconfig}
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.cpu().eval(), spec, dtype=torch.qint8)


def load_int8(config: ModelConfig, tensors: dict[str, torch.Tensor], source: Path) -> nn.Module:
    """Rebuild a model saved by :func:`quantize_state` and quantize it for int8 inference."""
    model = build_model(config)
    ckpt.load_weights(model, dequantize_state(tensors), source)
    return dynamic_int8(model)


# -- the optimize command's work: write the new model, measure before and after -------------------


@dataclass
class Measure:
    size_bytes: int
    tokens_per_s: float
    perplexity: float | None


@dataclass
class OptimizeReport:
    before: Measure
    after: Measure
    sparsity: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def ppl(m: Measure) -> str:
            return f"{m.perplexity:.3f}" if m.perplexity is not None else "n/a"

        b, a = self.before, self.after
        rows = [
            f"{'':<14}{'before':>12}{'after':>12}{'ratio':>9}",
            f"{'size (KB)':<14}{b.size_bytes / 1024:>12.1f}{a.size_bytes / 1024:>12.1f}{a.size_bytes / b.size_bytes:>9.2f}",
            f"{'tokens/s':<14}{b.tokens_per_s:>12.1f}{a.tokens_per_s:>12.1f}"
            f"{a.tokens_per_s / max(b.tokens_per_s, 1e-9):>9.2f}",
        ]
        ratio = f"{a.perplexity / b.perplexity:>9.3f}" if a.perplexity and b.perplexity else ""
        rows.append(f"{'perplexity':<14}{ppl(b):>12}{ppl(a):>12}{ratio}")
        if self.sparsity:
            rows.append(f"sparsity of the pruned matrices: {self.sparsity:.1%}")
        return rows + self.notes


def generation_speed(model: nn.Module, tokens: int = 200, prompt: list[int] | None = None) -> float:
    """Greedy tokens per second with the KV cache (or hidden state), after a short warm-up."""
    prompt = prompt or [0]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the backend decodes: one thread is fastest for batch-1 decoding
    try:
        list(generate(model, prompt, 5, temperature=0))
        start = time.perf_counter()
        n = sum(1 for _ in generate(model, prompt, tokens, temperature=0))
        return n / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)


def validation_ids(ck: ckpt.Checkpoint, eval_file: str | None) -> tuple[Any, int, str] | None:
    """Token ids to measure perplexity on: ``eval_file``, or the model's own validation split."""
    from lmassist.inhouse.data import encode_ids, normalize, read_corpus, read_text_file, split_text

    lowercase = bool(ck.config.get("training", {}).get("recipe", {}).get("lowercase", False))
    if eval_file:
        text = normalize(read_text_file(Path(eval_file)), lowercase)
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
) -> OptimizeReport:
    """Write an optimized copy of ``source`` to ``target`` and measure both."""
    from lmassist.inhouse.evaluate import evaluate_ids

    if quantize not in (None, "int8"):
        raise LMAssistError(f"unknown quantization {quantize!r}; only int8 is supported")
    source, target = Path(source), Path(target)
    ck = ckpt.load_checkpoint(source, "cpu")
    if ck.quantization:
        raise LMAssistError(f"{source.name} is already quantized; optimize the fp32 model it came from")
    data = validation_ids(ck, eval_file)
    prompt = [ck.tokenizer.start_id()]

    def measure(model: nn.Module, folder: Path) -> Measure:
        ppl = evaluate_ids(model, data[0], characters=data[1]).perplexity if data else None
        return Measure(ckpt.folder_size(folder), generation_speed(model, speed_tokens, prompt), ppl)

    before = measure(ck.model, source)
    model = build_model(config_from_dict(ck.config["model"]))
    ckpt.load_weights(model, ckpt.read_tensors(source / ckpt.WEIGHTS), source / ckpt.WEIGHTS)
    sparsity = prune_magnitude(model, prune) if prune > 0 else 0.0
    weights = ckpt.unique_state(model.state_dict())
    if quantize == "int8":
        weights = quantize_state(weights)
    config = {k: v for k, v in ck.config.items() if k not in ("format", "format_version", "tokenizer")}
    config.update(quantization=quantize, pruned=prune, optimized_from=str(source))
    ckpt.save_checkpoint(target, config, ck.tokenizer, weights, ck.history)
    after = measure(ckpt.load_checkpoint(target).model, target)
    report = OptimizeReport(before, after, sparsity)
    if data is None:
        report.notes.append("perplexity: the training text is not available; pass --file to measure it")
    else:
        report.notes.append(f"perplexity measured on {data[2]} ({len(data[0]):,} tokens)")
    if prune and not quantize:
        report.notes.append("pruned weights are stored densely: zeros compress well but the file keeps its size")
    if quantize and ck.config["model"].get("arch") == "rnn":
        report.notes.append("note: PyTorch has no int8 kernel for nn.RNN; its recurrent layer computes in fp32")
    return report
