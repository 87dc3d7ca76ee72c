"""An interpolated Kneser-Ney n-gram model: the baseline that shows what a neural model buys you.

It is trained on the same tokens as the neural model (the training split, same tokenizer) and
scored the same way (nats per token), so the two numbers are directly comparable.

The recipe (Chen & Goodman, 1998), for order ``k`` with discount ``D_k``::

    P(w | h) = max(c(h w) - D, 0) / c(h)  +  D · N1+(h •) / c(h) · P(w | h')

where ``h'`` drops the oldest token of ``h``. The highest order uses raw counts ``c``; lower orders
use continuation counts (in how many distinct contexts a sequence appears), which is what makes
Kneser-Ney better than plain back-off. Below the unigram sits a uniform distribution over the whole
vocabulary, so tokens never seen in training still get a finite probability.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmassist.errors import LMAssistError
from lmassist.inhouse.data import read_corpus, split_text
from lmassist.inhouse.evaluate import EvalResult


class KneserNey:
    def __init__(self, order: int = 5, vocab_size: int | None = None) -> None:
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order = order
        self.vocab_size = vocab_size
        self.counts: list[dict[tuple[int, ...], int]] = []  # per order k (index k): k-gram → count
        self.totals: list[dict[tuple[int, ...], int]] = []  # per order: context → sum of counts
        self.types: list[dict[tuple[int, ...], int]] = []  # per order: context → distinct next tokens
        self.discounts: list[float] = []

    def fit(self, ids: Sequence[int]) -> KneserNey:
        ids = [int(i) for i in ids]
        if len(ids) < 2:
            raise ValueError("need at least two tokens to train an n-gram model")
        n = self.order
        self.vocab_size = max(self.vocab_size or 0, max(ids) + 1)
        raw = Counter(zip(*(ids[i:] for i in range(n)), strict=False))  # highest order: raw counts
        tables: dict[int, dict[tuple[int, ...], int]] = {n: raw}
        for k in range(n - 1, 0, -1):  # lower orders: continuation counts from the order above
            cont: Counter[tuple[int, ...]] = Counter()
            for gram in tables[k + 1]:
                cont[gram[1:]] += 1
            tables[k] = cont
        self.counts = [{}] + [tables[k] for k in range(1, n + 1)]
        self.totals, self.types, self.discounts = [{}], [{}], [0.0]
        for k in range(1, n + 1):
            totals: dict[tuple[int, ...], int] = defaultdict(int)
            types: dict[tuple[int, ...], int] = defaultdict(int)
            for gram, c in self.counts[k].items():
                totals[gram[:-1]] += c
                types[gram[:-1]] += 1
            self.totals.append(dict(totals))
            self.types.append(dict(types))
            of = Counter(self.counts[k].values())
            n1, n2 = of.get(1, 0), of.get(2, 0)
            self.discounts.append(n1 / (n1 + 2 * n2) if n1 + n2 else 0.75)
        return self

    def prob(self, history: Sequence[int], token: int) -> float:
        """P(token | the last ``order - 1`` tokens of history), interpolated from order 0 upward."""
        history = tuple(history[len(history) - (self.order - 1) :]) if self.order > 1 else ()
        p = 1.0 / (self.vocab_size or 1)
        for k in range(1, min(self.order, len(history) + 1) + 1):
            h = history[len(history) - (k - 1) :] if k > 1 else ()
            total = self.totals[k].get(h)
            if not total:  # context never seen: the lower-order estimate stands
                continue
            d = self.discounts[k]
            c = self.counts[k].get(h + (token,), 0)
            p = max(c - d, 0.0) / total + d * self.types[k][h] / total * p
        return p

    def evaluate(self, ids: Sequence[int], characters: int | None = None) -> Any:
        """Mean cross-entropy of ``ids[1:]`` (the first token has no history, as for the neural model)."""
        ids = [int(i) for i in ids]
        if len(ids) < 2:
            raise ValueError("need at least two tokens to evaluate")
        nll = 0.0
        for i in range(1, len(ids)):
            nll -= math.log(self.prob(ids[max(0, i - self.order + 1) : i], ids[i]))
        count = len(ids) - 1
        return EvalResult(nll / count, count, characters if characters is not None else count)


def baseline_for_checkpoint(checkpoint: Any, order: int = 5, files: Sequence[str | Path] | None = None) -> tuple[KneserNey, str]:
    """A Kneser-Ney model trained on the checkpoint's own training split (or on ``files``' split).

    Returns the model and a short description of what it was trained on.
    """
    training = checkpoint.config.get("training", {})
    recipe = training.get("recipe", {})
    files = list(files or training.get("data", {}).get("files") or training.get("files") or [])
    if not files:
        raise LMAssistError(
            f"the checkpoint {checkpoint.path} does not say which files it was trained on; "
            "name them with --baseline-data FILE"
        )
    missing = [str(f) for f in files if not Path(f).exists()]
    if missing:
        raise LMAssistError(f"the baseline needs the training text, which is not there: {missing[0]} "
                            "(name it with --baseline-data FILE)")
    text, _ = read_corpus(files, lowercase=bool(recipe.get("lowercase", False)))
    train_text, _ = split_text(text, float(recipe.get("val_fraction", 0.1)))
    ids = checkpoint.tokenizer.encode(train_text)
    lm = KneserNey(order, checkpoint.tokenizer.vocab_size).fit(ids)
    return lm, f"{len(ids):,} training tokens"
