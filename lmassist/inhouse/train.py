"""Training: one loop for every architecture, on one device or many (``torchrun`` / DDP).

The recipe (:mod:`~lmassist.inhouse.recipe`): AdamW (weight decay on matrices only), a linear
warm-up then cosine decay to 10% of the peak rate, gradient clipping, bf16 autocast on CUDA, and
periodic validation on a fixed slice of the validation split that keeps the best weights. The
schedule runs to a step count (``steps``) or to a wall-clock budget (``minutes``), whichever was
asked for.

Under ``torchrun`` (:mod:`~lmassist.inhouse.devices`) each process draws its own batches,
gradients are averaged, and only rank 0 validates, prints and writes checkpoints. Ctrl+C (or
SIGTERM) finishes the current step on every rank, saves, and returns normally.

:func:`train` reads as the run goes: start, read the data, build the model, loop (validating and
saving as it goes), finish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lmassist.errors import LMAssistError
from lmassist.inhouse import checkpoint as ckpt
from lmassist.inhouse import devices
from lmassist.inhouse.data import DataReport, check_trainable, encode_ids, read_corpus, split_text
from lmassist.inhouse.devices import Dist, StopFlag
from lmassist.inhouse.evaluate import evaluate_ids
from lmassist.inhouse.model import build_model, config_from_dict, config_to_dict, count_parameters, lm_loss
from lmassist.inhouse.recipe import (
    PRESETS,
    TrainConfig,
    batches,
    learning_rate,
    make_optimizer,
    optimizer_tensors,
    restore_optimizer,
    set_learning_rate,
    snapshot,
)
from lmassist.inhouse.tokenizers import train_tokenizer
from lmassist.progress import ProgressReporter, duration


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


# -- one run's state ---------------------------------------------------------------------------------


@dataclass
class Corpus:
    """The training text as token ids, split, with the tokenizer that made them."""

    files: list[Path]
    tokenizer: Any
    train_ids: np.ndarray
    val_ids: np.ndarray
    report: DataReport


@dataclass
class Run:
    """Everything a run carries from one step of :func:`train` to the next."""

    cfg: TrainConfig
    out: Path | None
    dist: Dist
    device: torch.device
    say: Callable[[str], None]
    data: Corpus
    model_config: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    batch_size: int
    peak_lr: float
    block: int  # the context the batches and validation use
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    tokens: int = 0
    elapsed_before: float = 0.0  # seconds trained before a resume
    started: float = 0.0  # perf_counter() when this process's loop began
    best_val: float = float("inf")
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def elapsed(self, now: float | None = None) -> float:
        """Seconds trained so far, resumed runs included."""
        return self.elapsed_before + (time.perf_counter() if now is None else now) - self.started

    def fraction_done(self) -> float:
        """0 → 1: steps for ``--steps``, time for ``--minutes``."""
        if self.cfg.steps:
            return self.step / self.cfg.steps
        return self.elapsed() / (self.cfg.minutes * 60)  # type: ignore[operator]

    def reached_target(self, now: float) -> bool:
        steps, minutes = self.cfg.steps, self.cfg.minutes
        return (steps is not None and self.step >= steps) or (
            minutes is not None and self.elapsed(now) >= minutes * 60)

    def keep_if_best(self, val: float) -> None:
        if val < self.best_val:
            self.best_val = val
            self.best_weights = snapshot(self.model)

    def summary(self) -> dict[str, Any]:
        """The ``training`` section of config.json."""
        cfg = self.cfg
        return {
            "size": cfg.size,
            "step": self.step,
            "tokens": self.tokens,
            "elapsed_s": round(self.elapsed(), 2),
            "best_val_loss": self.best_val,
            "target_steps": cfg.steps,
            "target_minutes": cfg.minutes,
            "recipe": {k: v for k, v in asdict(cfg).items() if k not in ("device", "model_overrides")},
            "batch_size": self.batch_size,
            "lr": self.peak_lr,
            "world_size": self.dist.world,
            "data": {**asdict(self.data.report), "files": [str(Path(f).resolve()) for f in self.data.files]},
        }

    def save(self) -> None:
        """Write the checkpoint (best weights, history, and the state to resume from); rank 0 only."""
        if not self.dist.main or self.out is None:
            return
        state = None
        if self.cfg.save_train_state:
            state = {f"model.{k}": v for k, v in self.model.state_dict().items()}
            state.update(optimizer_tensors(self.optimizer))
        conf = {"model": config_to_dict(self.model_config), "quantization": None, "training": self.summary()}
        ckpt.save_checkpoint(self.out, conf, self.data.tokenizer, self.best_weights, self.history, state)


# -- the run, step by step --------------------------------------------------------------------------


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
    dist, device = devices.start(cfg.device, cfg.threads)
    say = (log or print) if dist.main else (lambda _msg: None)
    run = prepare(files, out, cfg, resume, dist, device, say)
    bar = TrainingProgress(progress and dist.main, cfg.steps, cfg.minutes * 60 if cfg.minutes is not None else None)
    with bar:
        interrupted = loop(run, bar)
    seconds = run.elapsed()
    final_val = finish(run, interrupted, seconds)
    dist.close()
    return TrainResult(
        out if dist.main else None, run.step, run.tokens, seconds, run.best_val, final_val,
        run.tokens / max(seconds, 1e-9), interrupted, count_parameters(run.model), run.data.report,
        devices.peak_memory_mb(device), run.model,
    )


def prepare(files: Iterable[str | Path], out: Path | None, cfg: TrainConfig, resume: bool, dist: Dist,
            device: torch.device, say: Callable[[str], None]) -> Run:
    """The data, the tokenizer and the model: fresh, or from the checkpoint being resumed."""
    text, paths = read_corpus(files, lowercase=cfg.lowercase)
    train_text, val_text = split_text(text, cfg.val_fraction)
    saved = _read_resume_state(out, cfg) if resume else None
    tokenizer = saved.tokenizer if saved else train_tokenizer(cfg.tokenizer, train_text, cfg.lowercase, cfg.bpe_vocab)
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
    model_config = saved.model_config if saved else None
    if model_config is None:
        context = min(cfg.context_length or preset["context_length"], len(train_ids) - 1)
        settings = {**preset, "context_length": context, "dropout": cfg.dropout, **cfg.model_overrides}
        model_config = config_from_dict({"arch": cfg.arch, "vocab_size": tokenizer.vocab_size, **settings})
    report = DataReport(len(paths), len(text), len(train_ids), len(val_ids), tokenizer.vocab_size)
    if cfg.steps is None and cfg.minutes is None:
        cfg.steps = 1000

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = build_model(model_config).to(device)
    run = Run(
        cfg, out, dist, device, say, Corpus(paths, tokenizer, train_ids, val_ids, report), model_config, model,
        make_optimizer(model, peak_lr, cfg.weight_decay, device), batch_size, peak_lr,
        block=min(model_config.context_length, len(train_ids) - 1),
    )
    if saved:
        _restore(run, saved)
    else:
        run.best_weights = snapshot(model)
    _announce(run, chosen)
    return run


def _read_resume_state(out: Path | None, cfg: TrainConfig) -> ckpt.TrainState:
    """The training state in ``out``; the recipe of that run fills what ``cfg`` leaves open."""
    if out is None or not (out / ckpt.TRAIN_STATE).exists():
        raise LMAssistError(f"nothing to resume: no training state in {out} (train without --resume first)")
    saved = ckpt.read_train_state(out)
    prev = saved.config.get("training", {})
    cfg.arch, cfg.size = saved.model_config.arch, prev.get("size", cfg.size)
    cfg.batch_size = cfg.batch_size or prev.get("batch_size")
    cfg.lr = cfg.lr or prev.get("lr")
    if cfg.steps is None and cfg.minutes is None:
        cfg.steps, cfg.minutes = prev.get("target_steps"), prev.get("target_minutes")
    return saved


def _restore(run: Run, saved: ckpt.TrainState) -> None:
    """Put the saved weights, optimizer moments, counters and best weights back into ``run``."""
    out = run.out
    assert out is not None  # _read_resume_state checked it
    weights = {k[len("model."):]: v for k, v in saved.tensors.items() if k.startswith("model.")}
    ckpt.load_weights(run.model, weights, out / ckpt.TRAIN_STATE)
    run.model.to(run.device)
    restore_optimizer(run.optimizer, {k: v.to(run.device) for k, v in saved.tensors.items()})
    last = saved.config.get("training", {})
    run.step, run.tokens = int(last.get("step", 0)), int(last.get("tokens", 0))
    run.elapsed_before = float(last.get("elapsed_s", 0.0))
    run.best_val = float(last.get("best_val_loss", float("inf")))
    run.history = saved.history
    weights_file = out / ckpt.WEIGHTS
    run.best_weights = ckpt.read_tensors(weights_file) if weights_file.exists() else snapshot(run.model)


def _announce(run: Run, chosen: bool) -> None:
    cfg, dist = run.cfg, run.dist
    for line in run.data.report.lines():
        run.say(line)
    run.say(
        f"{run.model_config.arch} ({cfg.size}{', chosen for the budget' if chosen else ''}): "
        f"{count_parameters(run.model):,} parameters, context {run.model_config.context_length}, "
        f"batch {run.batch_size}×{dist.world}, lr {run.peak_lr:g}, on {run.device.type}"
        + (f" ×{dist.world} processes" if dist.world > 1 else "")
        + (f"; resuming at step {run.step}" if run.step else "")
    )


@dataclass
class _Window:
    """Loss and tokens since the last validation: what the progress line and the history show."""

    started: float = field(default_factory=time.perf_counter)
    loss: float = 0.0
    steps: int = 0
    tokens: int = 0

    def add(self, loss: float, tokens: int) -> None:
        self.loss += loss
        self.steps += 1
        self.tokens += tokens

    @property
    def mean_loss(self) -> float:
        return self.loss / self.steps

    def tokens_per_s(self, now: float) -> float:
        return self.tokens / max(1e-9, now - self.started)


def loop(run: Run, bar: TrainingProgress) -> bool:
    """Train until the target or a stop signal, validating and saving every ``eval_interval`` steps;
    returns whether a signal stopped it."""
    cfg, dist = run.cfg, run.dist
    net = dist.wrap(run.model, run.device)
    amp = devices.autocast(run.device)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * dist.rank + 7919 * run.step)
    data = batches(run.data.train_ids, run.batch_size, run.block, gen)
    run.started = time.perf_counter()
    window = _Window()
    net.train()
    with StopFlag() as stop:
        while True:
            done, stopped = dist.agree(run.fraction_done(), stop.set)  # every rank stops at the same step
            if done >= 1.0 or stopped:
                return stopped
            lr = learning_rate(run.step, done, run.peak_lr, cfg.warmup_steps, cfg.min_lr_ratio)
            set_learning_rate(run.optimizer, lr)
            x, y = next(data)
            x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
            with amp:
                logits, _ = net(x)
                loss = lm_loss(logits, y)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
            run.optimizer.step()
            run.step += 1
            run.tokens += x.numel() * dist.world
            window.add(float(loss.detach()), x.numel() * dist.world)
            now = time.perf_counter()
            bar.advance(run.step, run.elapsed(now), window.mean_loss, window.tokens_per_s(now))
            if run.step % cfg.eval_interval == 0 or run.reached_target(now):
                if dist.main:
                    validate(run, lr, window, now, bar)
                window = _Window()
                net.train()


def validate(run: Run, lr: float, window: _Window, now: float, bar: TrainingProgress) -> None:
    """Measure the validation slice, add a row to the history, keep the best weights, save."""
    val = evaluate_ids(run.model, _eval_ids(run), run.block).nats_per_token
    row = {
        "step": run.step,
        "tokens": run.tokens,
        "elapsed_s": round(run.elapsed(now), 2),
        "lr": lr,
        "train_loss": round(window.mean_loss, 4),
        "val_loss": round(val, 4),
        "tokens_per_s": round(window.tokens_per_s(now), 1),
    }
    run.history.append(row)
    run.keep_if_best(val)
    bar.note(f"step {run.step}: train {row['train_loss']:.3f}, val {val:.3f} (best {run.best_val:.3f})")
    run.save()


def _eval_ids(run: Run) -> np.ndarray:
    """The fixed slice of the validation split every validation measures."""
    return run.data.val_ids[: run.cfg.eval_tokens + 1]


def finish(run: Run, interrupted: bool, seconds: float) -> float | None:
    """Validate where the loop stopped, save, and (unless interrupted) measure the best weights on the
    whole validation split; rank 0 only. Returns that full-split loss."""
    if not run.dist.main:
        return None
    if not run.history or run.history[-1]["step"] != run.step:  # stopped between validations
        val = evaluate_ids(run.model, _eval_ids(run), run.block).nats_per_token
        run.history.append({"step": run.step, "tokens": run.tokens, "elapsed_s": round(seconds, 2),
                            "val_loss": round(val, 4)})
        run.keep_if_best(val)
    if math.isinf(run.best_val):  # resumed past the target: nothing new to save
        run.best_val = float("nan")
    run.save()
    if interrupted:
        return None
    best = build_model(run.model_config).to(run.device)
    ckpt.load_weights(best, {k: v.to(run.device) for k, v in run.best_weights.items()}, Path("best weights"))
    final_val = evaluate_ids(best, run.data.val_ids, run.block).nats_per_token
    if run.out is not None:
        conf = ckpt.read_config(run.out)
        conf["training"]["val_loss_full"] = round(final_val, 4)
        ckpt.rewrite_config(run.out, conf)
    return final_val


class TrainingProgress(ProgressReporter):
    """Training's progress: step (or seconds of a budget), loss, perplexity and tokens/s; on a
    terminal a bar, otherwise ``train: step 40/1000  loss 2.310  ppl 10.07  1,234 tok/s`` lines."""

    def __init__(self, enabled: bool, steps: int | None, budget_s: float | None) -> None:
        super().__init__("train", enabled=enabled, transient=False, counts=False, elapsed=True)
        self.steps, self.budget_s = steps, budget_s
        self.step, self.seconds, self.metrics = 0, 0.0, ""

    def advance(self, step: int, elapsed: float, loss: float, tok_s: float) -> None:
        self.step, self.seconds = step, elapsed
        self.metrics = f"loss {loss:.3f}  ppl {math.exp(min(loss, 50)):.2f}  {tok_s:,.0f} tok/s"
        if self.steps:
            self.update(step, self.steps, f"step {step}  {self.metrics}")
        else:
            budget = self.budget_s or 0.0
            self.update(min(elapsed, budget), budget, f"step {step}  {self.metrics}")  # type: ignore[arg-type]

    def _of(self) -> str:
        return f"/{self.steps}" if self.steps else f", {self.seconds:.0f}/{self.budget_s:.0f} s"

    def status_line(self, now: float | None = None) -> str:
        if not self.step:
            return super().status_line(now)
        return f"train: step {self.step}{self._of()}  {self.metrics}"

    def final_line(self) -> str:
        return f"train: step {self.step}{self._of()} in {duration(time.monotonic() - self.started_at)}"
