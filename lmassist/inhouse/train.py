"""Training: one loop for every architecture, on one device or many (``torchrun`` / DDP).

The recipe: AdamW (weight decay on matrices only), a linear warm-up then cosine decay to 10% of
the peak rate, gradient clipping, bf16 autocast on CUDA, and periodic validation on a fixed slice
of the validation split that keeps the best weights. The schedule runs to a step count (``steps``)
or to a wall-clock budget (``minutes``), whichever was asked for.

Under ``torchrun`` (environment variables ``RANK``/``WORLD_SIZE``) the model is wrapped in
DistributedDataParallel — NCCL on GPUs, gloo on CPU — each process draws its own batches, gradients
are averaged, and only rank 0 validates, prints and writes checkpoints. Ctrl+C (or SIGTERM) finishes
the current step on every rank, saves, and returns normally.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lmassist import system
from lmassist.config import progress_interval
from lmassist.errors import LMAssistError
from lmassist.inhouse import checkpoint as ckpt
from lmassist.inhouse.data import DataReport, check_trainable, encode_ids, read_corpus, split_text
from lmassist.inhouse.evaluate import evaluate_ids
from lmassist.inhouse.model import (
    ARCHS,
    build_model,
    config_from_dict,
    config_to_dict,
    count_parameters,
    lm_loss,
)
from lmassist.inhouse.tokenizers import KINDS, train_tokenizer

SIZES = ("auto", "tiny", "small", "medium")
SHORT_BUDGET_MINUTES = 5.0  # on a CPU, "auto" picks "tiny" for budgets up to this long

# Model shape and the batch/learning rate that suit it. "small" is what we ship; "tiny" learns the
# most in a few minutes on a CPU (measured by `lmassist bench inhouse`: a short budget buys more steps
# of a smaller model, and a small model takes a high learning rate).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "transformer": {
        "tiny": dict(n_layer=3, n_head=4, n_embd=96, context_length=64, batch_size=16, lr=6e-3),
        "small": dict(n_layer=4, n_head=4, n_embd=128, context_length=128, batch_size=16, lr=2e-3),
        "medium": dict(n_layer=6, n_head=6, n_embd=192, context_length=256, batch_size=16, lr=1e-3),
    },
    "lstm": {
        "tiny": dict(n_layer=1, n_embd=64, n_hidden=256, context_length=64, batch_size=16, lr=6e-3),
        "small": dict(n_layer=2, n_embd=128, n_hidden=256, context_length=128, batch_size=16, lr=3e-3),
        "medium": dict(n_layer=3, n_embd=256, n_hidden=512, context_length=128, batch_size=32, lr=2e-3),
    },
    "rnn": {
        "tiny": dict(n_layer=1, n_embd=64, n_hidden=128, context_length=64, batch_size=16, lr=2e-3),
        "small": dict(n_layer=2, n_embd=128, n_hidden=256, context_length=128, batch_size=16, lr=2e-3),
        "medium": dict(n_layer=3, n_embd=256, n_hidden=512, context_length=128, batch_size=32, lr=1e-3),
    },
}


@dataclass
class TrainConfig:
    """Everything that decides a training run. ``None`` means: take it from the size preset."""

    arch: str = "transformer"
    tokenizer: str = "char"
    size: str = "auto"
    steps: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    context_length: int | None = None
    lr: float | None = None
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    dropout: float = 0.0
    eval_interval: int = 250
    eval_tokens: int = 32768
    seed: int = 1337
    lowercase: bool = False
    bpe_vocab: int = 1024
    val_fraction: float = 0.1
    device: str | None = None
    threads: int | None = None  # CPU threads; fewer than the cores helps on a busy, shared machine
    save_train_state: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)

    def resolve_size(self, device: torch.device) -> str:
        """``auto``: ``tiny`` for a short wall-clock budget on a CPU, else ``small``."""
        if self.size != "auto":
            return self.size
        short = self.minutes is not None and self.minutes <= SHORT_BUDGET_MINUTES
        return "tiny" if short and device.type == "cpu" else "small"

    def check(self) -> TrainConfig:
        if self.arch not in ARCHS:
            raise LMAssistError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.tokenizer not in KINDS:
            raise LMAssistError(f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(KINDS)}")
        if self.size not in SIZES:
            raise LMAssistError(f"unknown size {self.size!r}; choose one of {', '.join(SIZES)}")
        if self.steps is not None and self.steps < 1:
            raise LMAssistError("--steps must be at least 1")
        if self.minutes is not None and self.minutes <= 0:
            raise LMAssistError("--minutes must be more than 0")
        return self


@dataclass
class TrainResult:
    path: Path | None
    step: int
    tokens: int
    seconds: float
    best_val_loss: float
    final_val_loss: float | None
    tokens_per_s: float
    interrupted: bool
    parameters: int
    report: DataReport | None = None
    peak_memory_mb: float | None = None  # this process's peak resident memory (GPU memory on CUDA)
    model: nn.Module | None = field(default=None, repr=False)  # the last weights, for notebooks and tests


# -- distributed helpers --------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # we created the process group, so we tear it down

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> Dist:
    """Join the process group when started by torchrun; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def pick_device(requested: str | None, dist: Dist) -> torch.device:
    """The checked device, one GPU per process of a distributed run; training never picks MPS itself."""
    device = torch.device(system.pick_device(requested or ("cuda" if torch.cuda.is_available() else "cpu")))
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", dist.local_rank % torch.cuda.device_count())
    return device


# -- pieces of the recipe -------------------------------------------------------------------------


def learning_rate(step: int, progress: float, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``peak`` to ``peak*min_ratio``.

    ``progress`` (0 → 1) is the fraction of the run done: steps for ``--steps``, time for ``--minutes``.
    """
    warm = min(1.0, (step + 1) / max(1, warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return peak * warm * (min_ratio + (1.0 - min_ratio) * cosine)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays weight matrices and embeddings, but not biases or LayerNorm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), fused=device.type == "cuda")


def batches(ids: np.ndarray, batch: int, block: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random (input, target) windows; targets are inputs shifted by one token."""
    high = len(ids) - block
    while True:
        starts = torch.randint(high, (batch,), generator=generator).tolist()
        rows = np.stack([ids[s : s + block + 1] for s in starts]).astype(np.int64)
        t = torch.from_numpy(rows)
        yield t[:, :-1], t[:, 1:]


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """AdamW's moments as flat named tensors, so they can go in safetensors (no pickle)."""
    out: dict[str, torch.Tensor] = {}
    for i, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"optim.{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(float(value))
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, i, key = name.split(".", 2)
            state.setdefault(int(i), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


class StopFlag:
    """Turns the first Ctrl+C/SIGTERM into "stop after this step and save"; a second one aborts."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        with contextlib.suppress(ValueError):  # only the main thread may install handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


# -- the loop ---------------------------------------------------------------------------------------


def train(
    files: Iterable[str | Path],
    out: str | Path | None,
    config: TrainConfig | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a model on ``files`` and write its checkpoint folder to ``out`` (rank 0 only).

    With ``resume`` the model, tokenizer, optimizer and step come from ``out``'s training state and
    the run continues toward the same target (or the new ``steps``/``minutes`` given as the total).
    """
    cfg = (config or TrainConfig()).check()
    out = Path(out) if out is not None else None
    probe = torch.device(cfg.device) if cfg.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dist = setup_distributed(probe.type)
    device = pick_device(cfg.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif dist.world > 1 and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.world))
    say = (log or print) if dist.main else (lambda _msg: None)

    # 1. the data, the tokenizer and the model (fresh, or from the checkpoint being resumed)
    text, files = read_corpus(files, lowercase=cfg.lowercase)
    train_text, val_text = split_text(text, cfg.val_fraction)
    history: list[dict[str, Any]] = []
    saved: dict[str, Any] = {}
    start_tensors: dict[str, torch.Tensor] | None = None
    if resume:
        if out is None or not (out / ckpt.TRAIN_STATE).exists():
            raise LMAssistError(f"nothing to resume: no training state in {out} (train without --resume first)")
        saved = ckpt.read_config(out)
        tokenizer = ckpt.read_tokenizer(out)
        model_config = config_from_dict(saved["model"])
        start_tensors = ckpt.read_tensors(out / ckpt.TRAIN_STATE)
        history = ckpt.read_history(out)
        prev = saved.get("training", {})
        cfg.arch, cfg.size = model_config.arch, prev.get("size", cfg.size)
        cfg.batch_size = cfg.batch_size or prev.get("batch_size")
        cfg.lr = cfg.lr or prev.get("lr")
        if cfg.steps is None and cfg.minutes is None:
            cfg.steps, cfg.minutes = prev.get("target_steps"), prev.get("target_minutes")
    else:
        tokenizer = train_tokenizer(cfg.tokenizer, train_text, cfg.lowercase, cfg.bpe_vocab)
        model_config = None
    chosen = cfg.size == "auto"
    cfg.size = cfg.resolve_size(device)
    preset = dict(PRESETS[cfg.arch][cfg.size])
    batch_size = cfg.batch_size or preset.pop("batch_size")
    peak_lr = cfg.lr or preset.pop("lr")
    preset.pop("batch_size", None)
    preset.pop("lr", None)
    train_ids = encode_ids(tokenizer, train_text)
    val_ids = encode_ids(tokenizer, val_text)
    check_trainable(train_ids, 2, "training")
    check_trainable(val_ids, 2, "validation")
    if model_config is None:
        context = min(cfg.context_length or preset["context_length"], len(train_ids) - 1)
        settings = {**preset, "context_length": context, "dropout": cfg.dropout, **cfg.model_overrides}
        model_config = config_from_dict({"arch": cfg.arch, "vocab_size": tokenizer.vocab_size, **settings})
    block = min(model_config.context_length, len(train_ids) - 1)
    report = DataReport(len(files), len(text), len(train_ids), len(val_ids), tokenizer.vocab_size)
    if cfg.steps is None and cfg.minutes is None:
        cfg.steps = 1000

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = build_model(model_config).to(device)
    optimizer = make_optimizer(model, peak_lr, cfg.weight_decay, device)
    step, tokens_seen, elapsed_before = 0, 0, 0.0
    best_val = float("inf")
    if start_tensors is not None:
        weights = {k[len("model.") :]: v for k, v in start_tensors.items() if k.startswith("model.")}
        ckpt.load_weights(model, weights, out / ckpt.TRAIN_STATE)  # type: ignore[operator]
        model.to(device)
        restore_optimizer(optimizer, {k: v.to(device) for k, v in start_tensors.items()})
        last = saved.get("training", {})
        step, tokens_seen = int(last.get("step", 0)), int(last.get("tokens", 0))
        elapsed_before = float(last.get("elapsed_s", 0.0))
        best_val = float(last.get("best_val_loss", float("inf")))
    best_weights = snapshot(model)
    if start_tensors is not None and out is not None and (out / ckpt.WEIGHTS).exists():
        best_weights = ckpt.read_tensors(out / ckpt.WEIGHTS)
    n_params = count_parameters(model)
    for line in report.lines():
        say(line)
    say(
        f"{model_config.arch} ({cfg.size}{', chosen for the budget' if chosen else ''}): {n_params:,} parameters, context {model_config.context_length}, "
        f"batch {batch_size}×{dist.world}, lr {peak_lr:g}, on {device.type}"
        + (f" ×{dist.world} processes" if dist.world > 1 else "")
        + (f"; resuming at step {step}" if step else "")
    )

    net: nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda" and torch.cuda.is_bf16_supported()
        else contextlib.nullcontext()
    )
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * dist.rank + 7919 * step)
    data = batches(train_ids, batch_size, block, gen)
    eval_ids = val_ids[: cfg.eval_tokens + 1]

    def run_summary() -> dict[str, Any]:
        return {
            "size": cfg.size,
            "step": step,
            "tokens": tokens_seen,
            "elapsed_s": round(elapsed_before + time.perf_counter() - t0, 2),
            "best_val_loss": best_val,
            "target_steps": cfg.steps,
            "target_minutes": cfg.minutes,
            "recipe": {k: v for k, v in asdict(cfg).items() if k not in ("device", "model_overrides")},
            "batch_size": batch_size,
            "lr": peak_lr,
            "world_size": dist.world,
            "data": {**asdict(report), "files": [str(Path(f).resolve()) for f in files]},
        }

    def save() -> None:
        if not dist.main or out is None:
            return
        state = None
        if cfg.save_train_state:
            state = {f"model.{k}": v for k, v in model.state_dict().items()}
            state.update(optimizer_tensors(optimizer))
        conf = {"model": config_to_dict(model_config), "quantization": None, "training": run_summary()}
        ckpt.save_checkpoint(out, conf, tokenizer, best_weights, history, state)

    # 2. the loop
    t0 = time.perf_counter()
    budget_s = cfg.minutes * 60 if cfg.minutes is not None else None
    interrupted = False
    window_loss, window_steps, window_t, window_tokens = 0.0, 0, time.perf_counter(), 0
    bar = _Progress(progress and dist.main, cfg.steps, budget_s)
    net.train()
    with StopFlag() as stop, bar:
        while True:
            elapsed = elapsed_before + time.perf_counter() - t0
            done = step / cfg.steps if cfg.steps else elapsed / budget_s  # type: ignore[operator]
            flags = torch.tensor([done, float(stop.set)])
            if dist.world > 1:  # every rank must stop at the same step
                import torch.distributed as tdist

                tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
            if flags[0] >= 1.0 or flags[1] > 0:
                interrupted = bool(flags[1] > 0)
                break
            lr = learning_rate(step, float(flags[0]), peak_lr, cfg.warmup_steps, cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(data)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with amp:
                logits, _ = net(x)
                loss = lm_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            tokens_seen += x.numel() * dist.world
            window_tokens += x.numel() * dist.world
            window_loss += float(loss.detach())
            window_steps += 1
            now = time.perf_counter()
            tok_s = window_tokens / max(1e-9, now - window_t)
            bar.update(step, elapsed_before + now - t0, window_loss / window_steps, tok_s)
            last = (cfg.steps is not None and step >= cfg.steps) or (
                budget_s is not None and elapsed_before + now - t0 >= budget_s
            )
            if step % cfg.eval_interval == 0 or last:
                if dist.main:
                    val = evaluate_ids(model, eval_ids, block).nats_per_token
                    row = {
                        "step": step,
                        "tokens": tokens_seen,
                        "elapsed_s": round(elapsed_before + now - t0, 2),
                        "lr": lr,
                        "train_loss": round(window_loss / window_steps, 4),
                        "val_loss": round(val, 4),
                        "tokens_per_s": round(tok_s, 1),
                    }
                    history.append(row)
                    if val < best_val:
                        best_val = val
                        best_weights = snapshot(model)
                    bar.note(f"step {step}: train {row['train_loss']:.3f}, val {val:.3f} (best {best_val:.3f})")
                    save()
                window_loss, window_steps, window_t, window_tokens = 0.0, 0, time.perf_counter(), 0
                net.train()

    seconds = elapsed_before + time.perf_counter() - t0
    final_val: float | None = None
    path: Path | None = None
    if dist.main:
        if not history or history[-1]["step"] != step:  # stopped between validations
            val = evaluate_ids(model, eval_ids, block).nats_per_token
            history.append({"step": step, "tokens": tokens_seen, "elapsed_s": round(seconds, 2), "val_loss": round(val, 4)})
            if val < best_val:
                best_val = val
                best_weights = snapshot(model)
        if math.isinf(best_val):  # resumed past the target: nothing new to save
            best_val = float("nan")
        save()
        if out is not None:
            path = out
        if not interrupted:
            best_model = build_model(model_config).to(device)
            ckpt.load_weights(best_model, {k: v.to(device) for k, v in best_weights.items()}, Path("best weights"))
            final_val = evaluate_ids(best_model, val_ids, block).nats_per_token
            if out is not None:
                conf = ckpt.read_config(out)
                conf["training"]["val_loss_full"] = round(final_val, 4)
                _rewrite_config(out, conf)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
        if dist.owned:
            tdist.destroy_process_group()
    return TrainResult(
        path, step, tokens_seen, seconds, best_val, final_val, tokens_seen / max(seconds, 1e-9), interrupted,
        n_params, report, peak_memory_mb(device), model,
    )


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory so far: allocated GPU memory on CUDA, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return None
    from lmassist.system import rusage_to_mb

    return rusage_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (tied matrices once), unaffected by further training."""
    return {k: v.clone() for k, v in ckpt.unique_state(model.state_dict()).items()}


def _rewrite_config(folder: Path, conf: dict[str, Any]) -> None:
    """Update config.json in place (atomically) without rewriting the weights."""
    import json
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(conf, indent=2) + "\n")
    os.replace(tmp, folder / ckpt.CONFIG)


class _Progress:
    """A rich progress bar with loss, perplexity and tokens/s; silent when disabled."""

    def __init__(self, enabled: bool, steps: int | None, budget_s: float | None) -> None:
        self.enabled = enabled
        self.steps, self.budget_s = steps, budget_s
        self._p: Any = None
        self._last_line = 0.0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._p.__enter__()
            total = self.steps if self.steps else self.budget_s
            self._task = self._p.add_task("train", total=total, info="")
        return self

    def update(self, step: int, elapsed: float, loss: float, tok_s: float) -> None:
        if self._p is None:
            return
        ppl = math.exp(min(loss, 50))
        info = f"step {step}  loss {loss:.3f}  ppl {ppl:.2f}  {tok_s:,.0f} tok/s"
        self._p.update(self._task, completed=step if self.steps else min(elapsed, self.budget_s or 0), info=info)
        # Not a terminal (a log, CI, nohup): rich draws nothing until the end, so say it is alive.
        interval = progress_interval()
        if not sys.stderr.isatty() and interval and elapsed - self._last_line >= interval:
            self._last_line = elapsed
            of = f"/{self.steps}" if self.steps else f", {elapsed:.0f}/{self.budget_s:.0f} s"
            print(f"train: step {step}{of}  loss {loss:.3f}  ppl {ppl:.2f}  {tok_s:,.0f} tok/s",
                  file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self._p is not None:
            self._p.console.log(text)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(None, None, None)
