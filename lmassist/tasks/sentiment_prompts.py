"""The sentiment task's few-shot prompts: how a shot reads (a prompt form) and in which order the
shots of :mod:`lmassist.tasks.sentiment_shots` come.

A 135M model is very sensitive to both, and leans toward the label of the last shot; the classifier
averages views of the same shots in orders that end on opposite labels to cancel most of that lean.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lmassist.tasks.sentiment_shots import NEUTRAL_SHOTS, SHOTS


def shot_order(labels: tuple[str, ...], shots: int, order: int = 0) -> list[tuple[str, str]]:
    """The first ``shots`` shots of the pool for ``labels``, in arrangement ``order`` (see
    :meth:`PromptForm.prefix`); with neutral, its shots replace the last two."""
    pool = [s for s in SHOTS if s[1] in labels]
    chosen = pool[:shots]
    if order >= 2 and "neutral" not in labels:
        rng = random.Random(order - 1)
        pos = [s for s in chosen if s[1] == "positive"]
        neg = [s for s in chosen if s[1] == "negative"]
        rng.shuffle(pos)
        rng.shuffle(neg)
        first, second = (pos, neg) if order % 2 == 0 else (neg, pos)
        chosen = [x for pair in zip(first, second, strict=False) for x in pair]
    if "neutral" in labels:
        chosen = [*chosen[: max(0, shots - 2)], *NEUTRAL_SHOTS]
    if order % 2 and order < 2:
        chosen = [x for i in range(0, len(chosen) - 1, 2) for x in (chosen[i + 1], chosen[i])] + (
            [chosen[-1]] if len(chosen) % 2 else [])
    return chosen


@dataclass(frozen=True)
class PromptForm:
    """One few-shot form: how a shot reads, how the query ends, and the word for each label."""

    name: str
    shot: str
    query: str
    words: dict[str, str]
    # Noisy channel (Min et al. 2022): the label comes first and the *text* is scored after it,
    # P(text | label), instead of P(label | text). ``query`` then holds the label ({w}), not the text.
    channel: bool = False

    def prefix(self, labels: tuple[str, ...], shots: int, order: int = 0) -> str:
        """The few-shot prefix. ``order`` 0 keeps the pool's order; 1 swaps each pair of shots, so the
        other label comes last (averaging both cancels the recency bias toward the last shot's
        label); ``order`` k >= 2 shuffles each label's shots with seed k-1 and interleaves them, the
        positive one first when k is even. Several orders averaged is an ensemble over shot orders,
        which a 135M model is very sensitive to."""
        return "".join(self.shot.format(t=t, w=self.words[lab]) for t, lab in shot_order(labels, shots, order))

    def prompt(self, prefix: str, text: str) -> str:
        return prefix + self.query.format(t=" ".join(text.split()))

    def renamed(self, name: str) -> PromptForm:
        return PromptForm(name, self.shot, self.query, self.words, self.channel)


FORMS: dict[str, PromptForm] = {
    "review": PromptForm(
        "review", "Review: {t}\nSentiment: {w}\n\n", "Review: {t}\nSentiment:",
        {"positive": "positive", "negative": "negative", "neutral": "neutral"},
    ),
    "movie": PromptForm(
        "movie", "Review: {t}\nThe movie was {w}\n\n", "Review: {t}\nThe movie was",
        {"positive": "great", "negative": "terrible", "neutral": "okay"},
    ),
    "liked": PromptForm(
        "liked", "Movie review: {t}\nDid the critic like the movie? {w}\n\n",
        "Movie review: {t}\nDid the critic like the movie?",
        {"positive": "Yes", "negative": "No", "neutral": "Maybe"},
    ),
    # The channel form scores the review after "Sentiment: <label>\nReview:" under each label. Both
    # labels score the very same tokens, so a review's length or rare words cancel out of the
    # comparison. Cost: the review is evaluated once per label (the shot prefix, identical for both
    # labels up to the last shot, stays in the prefix cache).
    "channel": PromptForm(
        "channel", "Sentiment: {w}\nReview: {t}\n\n", "Sentiment: {w}\nReview:",
        {"positive": "positive", "negative": "negative", "neutral": "neutral"}, channel=True,
    ),
}
# --direction: which forms are scored. direct is the default (it measured best with the default
# model); the channel is for other models, where the literature finds it more robust.
DIRECTIONS: dict[str, tuple[str, ...]] = {"direct": ("review",), "channel": ("channel",), "both": ("review", "channel")}
