"""How good is a language model on a text: cross-entropy, bits per character, perplexity.

Every token of the text is scored exactly once (not a random sample), so two models evaluated on
the same file are compared on the same tokens. The Transformer reads the text in windows of its
context length; the RNN/LSTM reads it as a few long streams, carrying its hidden state across.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from lmassist.inhouse.model import context_limit, lm_loss


@dataclass
class EvalResult:
    nats_per_token: float
    tokens: int
    characters: int
    seconds: float = 0.0

    @property
    def perplexity(self) -> float:
        """Per-token perplexity: exp of the mean cross-entropy."""
        return math.exp(min(self.nats_per_token, 700.0))

    @property
    def bits_per_char(self) -> float:
        """Total information over characters, comparable across tokenizers."""
        return self.nats_per_token * self.tokens / max(1, self.characters) / math.log(2)

    def to_dict(self) -> dict[str, float]:
        return {
            "nats_per_token": round(self.nats_per_token, 4),
            "bits_per_char": round(self.bits_per_char, 4),
            "perplexity": round(self.perplexity, 3),
            "tokens": self.tokens,
            "characters": self.characters,
        }


@torch.no_grad()
def evaluate_ids(
    model: nn.Module,
    ids: np.ndarray,
    window: int | None = None,
    batch_size: int = 16,
    characters: int | None = None,
    device: str | torch.device | None = None,
) -> EvalResult:
    """Mean cross-entropy (nats/token) of predicting ``ids[1:]`` from what precedes each token."""
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    data = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    if len(data) < 2:
        raise ValueError("need at least two tokens to evaluate")
    limit = context_limit(model)
    window = min(window or limit or 128, limit or 10**9)
    total, count = 0.0, 0
    if limit is not None:  # Transformer: non-overlapping windows, batched
        starts = list(range(0, len(data) - 1, window))
        for b in range(0, len(starts), batch_size):
            group = starts[b : b + batch_size]
            length = min(window, len(data) - 1 - group[0])
            # windows in a batch must have one length: the short final one goes on its own
            same = [s for s in group if len(data) - 1 - s >= length]
            rest = [s for s in group if s not in same]
            for chunk in (same, rest):
                if not chunk:
                    continue
                n = min(window, len(data) - 1 - chunk[0])
                x = torch.stack([data[s : s + n] for s in chunk]).to(device)
                y = torch.stack([data[s + 1 : s + 1 + n] for s in chunk]).to(device)
                logits, _ = model(x)
                total += float(lm_loss(logits, y, reduction="sum"))
                count += y.numel()
    else:  # RNN/LSTM: `streams` contiguous streams read in parallel, state carried along
        streams = max(1, min(batch_size, (len(data) - 1) // window))
        per = (len(data) - 1) // streams
        xs = data[: streams * per].view(streams, per)
        ys = data[1 : streams * per + 1].view(streams, per)
        state = None
        for s in range(0, per, window):
            logits, state = model(xs[:, s : s + window].to(device), state)
            total += float(lm_loss(logits, ys[:, s : s + window].to(device), reduction="sum"))
            count += ys[:, s : s + window].numel()
        leftover = len(data) - 1 - streams * per  # the tail that did not fill a stream
        if leftover:
            tail = data[streams * per - 1 :]
            logits, _ = model(tail[:-1].unsqueeze(0).to(device), None)
            # score only the leftover targets (the first was already counted above)
            lp = lm_loss(logits[:, -leftover:], tail[-leftover:].unsqueeze(0).to(device), reduction="sum")
            total += float(lp)
            count += leftover
    model.train(was_training)
    chars = characters if characters is not None else count
    return EvalResult(total / count, count, chars, time.perf_counter() - start)
