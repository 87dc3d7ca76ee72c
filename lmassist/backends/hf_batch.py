"""Batched scoring for transformers models: many (prompt, continuation) pairs per forward pass.

One text at a time leaves a GPU idle: a 40-token review is too little work for one launch. Here the
pairs become rows of a padded batch, and three things keep the work to what is needed:

* **the shared prefix once:** few-shot tasks put the same long prefix before every text; it is
  evaluated once per call and its KV cache repeated across the batch, so each row only computes
  its own tokens;
* **one row per prompt for one-token continuations:** label words that are one token after the
  prompt are read from the same row of logits, as the one-at-a-time path of llama.cpp does;
* **left padding, explicit positions:** each row's tokens end at the batch's last position, so
  only the last few positions' logits are computed (``logits_to_keep``) whatever the vocabulary,
  and positions count real tokens only, so a padded row scores as it would alone.

Batches are sized from the memory they need (the KV cache, activations and kept logits) against a
budget: half the free memory of a GPU, :data:`CPU_BUDGET` bytes on a CPU; a batch that still runs out
of memory is split in two and retried.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from lmassist.generation import ContextLengthError, common_prefix_length

CPU_BUDGET = 1 << 30  # bytes a CPU batch may take
MIN_SHARED = 8  # a shared prefix shorter than this is not worth a separate pass


@dataclass
class Row:
    """Tokens to run and what to read from the last positions: ``(result slot, target ids)``."""

    ids: list[int]
    reads: list[tuple[tuple[int, int], list[int]]] = field(default_factory=list)

    @property
    def keep(self) -> int:
        """How many final positions hold logits we read."""
        return max(len(t) for _, t in self.reads)


def plan_rows(requests: Sequence[tuple[str, Sequence[str]]], encode: Callable[[str], list[int]],
              bos: int | None, context_length: int) -> tuple[list[Row], list[list[float]]]:
    """The rows that answer every pair, and the results with empty continuations already filled (0.0).

    Mirrors the one-at-a-time ``score``: the continuation's tokens are those after the common
    prefix of the prompt's and the joined text's ids; nothing to condition on means a BOS token first.
    """
    rows: list[Row] = []
    results: list[list[float]] = []
    for r, (prompt, continuations) in enumerate(requests):
        prompt_ids = encode(prompt)
        results.append([0.0] * len(continuations))
        shared: Row | None = None  # the prompt's own row, for continuations one token past it
        for c, continuation in enumerate(continuations):
            ids = encode(prompt + continuation)
            start = common_prefix_length(prompt_ids, ids)
            if start == len(ids):
                continue  # an empty continuation has probability one
            if start == 0:
                if bos is None:
                    start = 1
                else:
                    ids, start = [bos, *ids], 1
            if len(ids) > context_length:
                raise ContextLengthError(
                    f"prompt and continuation are {len(ids)} tokens; the context holds {context_length}")
            if start == len(prompt_ids) == len(ids) - 1 and start > 0:
                if shared is None:
                    shared = Row(list(prompt_ids))
                    rows.append(shared)
                shared.reads.append(((r, c), ids[start:]))
            else:
                rows.append(Row(ids[:-1], [((r, c), ids[start:])]))
    return rows, results


def shared_prefix(rows: Sequence[Row]) -> int:
    """Tokens every row starts with that no row needs logits for (0 when too few to pay off)."""
    if len(rows) < 2:
        return 0
    first = rows[0].ids
    n = min(len(row.ids) - row.keep for row in rows)
    for row in rows[1:]:
        n = min(n, common_prefix_length(first, row.ids))
        if n < MIN_SHARED:
            return 0
    return n


class BatchScorer:
    """Runs planned rows through a causal LM in padded batches and fills in the log-likelihoods."""

    def __init__(self, model: Any, device: torch.device, pad: int, cache_arg: str, logits_to_keep: bool,
                 forward_lock: Any) -> None:
        self.model = model
        self.device = device
        self.pad = pad
        self.cache_arg = cache_arg
        self.logits_to_keep = logits_to_keep
        self.lock = forward_lock
        config = model.config
        self.layers = int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 12))
        self.hidden = int(getattr(config, "hidden_size", None) or getattr(config, "n_embd", 768))
        heads = int(getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 12))
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        self.heads = heads
        self.kv_width = kv_heads * (self.hidden // heads)
        self.vocab = int(getattr(config, "vocab_size", 50000))
        self.bytes = torch.finfo(model.dtype).bits // 8 if model.dtype.is_floating_point else 4

    def budget(self) -> int:
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return max(free // 2, 64 << 20)
        return CPU_BUDGET

    def row_bytes(self, past: int, length: int, keep: int) -> int:
        """A rough upper bound of one row's memory: its KV cache, activations, attention scores, logits."""
        total = past + length
        kv = 2 * self.layers * self.kv_width * total * self.bytes
        activations = length * self.hidden * 16 * self.bytes + self.heads * length * total * 4
        return kv + activations + keep * self.vocab * 4

    def run(self, rows: list[Row], results: list[list[float]]) -> None:
        if not rows:
            return
        past = shared_prefix(rows)
        cache = self._prefix_cache(rows[0].ids[:past]) if past else None
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids), reverse=True)
        budget = self.budget()
        batch: list[Row] = []
        for i in order:
            row = rows[i]
            width = len(batch[0].ids) - past if batch else len(row.ids) - past
            keep = max([row.keep, *(b.keep for b in batch)])
            if batch and (len(batch) + 1) * self.row_bytes(past, width, keep) > budget:
                self._score(batch, past, cache, results)
                batch = []
            batch.append(row)
        self._score(batch, past, cache, results)

    def _prefix_cache(self, ids: list[int]) -> Any:
        with self.lock, torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                             **({"logits_to_keep": 1} if self.logits_to_keep else {}))
        cache = out.get("cache")
        return cache if cache is not None else out.get("past_key_values")

    def _score(self, batch: list[Row], past: int, cache: Any, results: list[list[float]]) -> None:
        try:
            logits = self._forward(batch, past, cache)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(batch) // 2
            self._score(batch[:half], past, cache, results)
            self._score(batch[half:], past, cache, results)
            return
        logprobs = logits.float().log_softmax(-1)
        width = logprobs.shape[1]
        for b, row in enumerate(batch):
            for (r, c), targets in row.reads:
                k = len(targets)
                picked = logprobs[b, width - k:].gather(1, torch.tensor(targets, device=logprobs.device)[:, None])
                results[r][c] = float(picked.sum())

    def _forward(self, batch: list[Row], past: int, cache: Any) -> torch.Tensor:
        """Logits at each row's last ``keep`` positions (rows left-padded to one length)."""
        suffixes = [row.ids[past:] for row in batch]
        length = max(len(s) for s in suffixes)
        keep = max(row.keep for row in batch)
        ids = torch.full((len(batch), length), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), past + length), dtype=torch.long)
        mask[:, :past] = 1
        for b, s in enumerate(suffixes):
            ids[b, length - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[b, past + length - len(s):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                                  "position_ids": positions.to(self.device), "use_cache": cache is not None}
        if cache is not None:
            repeated = copy.deepcopy(cache)
            repeated.batch_repeat_interleave(len(batch))
            kwargs[self.cache_arg] = repeated
        if self.logits_to_keep:
            kwargs["logits_to_keep"] = keep
        with self.lock, torch.inference_mode():
            return self.model(**kwargs).logits[:, -keep:]
