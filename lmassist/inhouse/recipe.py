"""What decides a training run: the sizes and their settings, and the recipe's pieces.

:class:`TrainConfig` holds the choices (``None``: take it from the size preset); the recipe is AdamW
(weight decay on matrices only), a linear warm-up then cosine decay to a fraction of the peak rate,
and random windows of the token array as batches. :mod:`lmassist.inhouse.train` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lmassist.errors import LMAssistError
from lmassist.inhouse.checkpoint import unique_state
from lmassist.inhouse.model import ARCHS
from lmassist.inhouse.tokenizers import KINDS

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


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def batches(ids: np.ndarray, batch: int, block: int, generator: torch.Generator,
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (tied matrices once), unaffected by further training."""
    return {k: v.clone() for k, v in unique_state(model.state_dict()).items()}
