"""The sentiment classifier: label texts with one model by the likelihood of the label words after
few-shot prompts (:mod:`lmassist.tasks.sentiment_prompts`), or by generating a word and parsing it.

A 135M model leans toward the label of the last shot, so each prompt form is scored under two shot
orders that end on opposite labels and the views are averaged; what is left of the lean is measured
on hand-written reviews with known labels (the "held-out" calibration, cached per model and prompt).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lmassist.config import atomic_write_text
from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Model
from lmassist.tasks.base import Progress
from lmassist.tasks.chunking import fit_head
from lmassist.tasks.sentiment_prompts import DIRECTIONS, FORMS, PromptForm
from lmassist.tasks.sentiment_shots import CONTENT_FREE, HELD_OUT

# The default: one form, all the shots, two shot orders averaged (2x the cost of one prompt).
DEFAULT_DIRECTION = "direct"
DEFAULT_FORMS = DIRECTIONS[DEFAULT_DIRECTION]
DEFAULT_SHOTS = 24
DEFAULT_ORDERS = (1, 2)
BATCH_MIN = 8  # batch calibration needs this many texts to estimate the median
# Texts per Model.score_many call: the backend batches within it (padded batches on a GPU); between
# calls the run can be cancelled and progress is shown.
SCORE_BATCH = 32
# How a view's label scores are corrected before the views are averaged.
# held-out: the threshold midway between the mean log-odds of the labelled HELD_OUT reviews of
#   each label (two labels only; computed once per model and prompt, then cached);
# content-free: subtract the scores of content-free inputs ("N/A", "", "[MASK]"; Zhao et al. 2021);
# batch: centre each label's score on its median over the texts of one run (assumes balanced labels);
# none: raw scores.
CALIBRATIONS = ("held-out", "content-free", "batch", "none")
DEFAULT_CALIBRATION = "held-out"


class SentimentClassifier:
    """Label texts with one model: by label likelihood when it can score, else by generation."""

    def __init__(
        self,
        model: Model,
        forms: tuple[str, ...] = DEFAULT_FORMS,
        shots: int = DEFAULT_SHOTS,
        calibration: str = DEFAULT_CALIBRATION,
        neutral: bool = False,
        method: str = "auto",
        suffix: str = "",
        orders: int | tuple[int, ...] = DEFAULT_ORDERS,
        cache: Path | None = None,
        concurrency: int = 1,
    ) -> None:
        unknown = [f for f in forms if f not in FORMS]
        if unknown:
            raise LMAssistError(f"unknown prompt form {unknown[0]!r}; choose from {', '.join(FORMS)}")
        if calibration not in CALIBRATIONS:
            raise LMAssistError(f"unknown calibration {calibration!r}; choose from {', '.join(CALIBRATIONS)}")
        self.model = model
        # Texts generated at once: only a model that serves requests in parallel (a server) overlaps them.
        self.concurrency = max(1, concurrency) if model.parallel_safe else 1
        self.labels: tuple[str, ...] = ("positive", "negative", "neutral") if neutral else ("positive", "negative")
        self.forms = [FORMS[f] for f in forms]
        self.shots = shots
        self.suffix = suffix
        if method == "auto":
            method = "score" if model.supports_score else "generate"
        if method == "score" and not model.supports_score:
            raise LMAssistError(f"{model.info.name} cannot score continuations; use --method generate")
        self.method = method
        # Generation has no scores to correct; the held-out reviews have no neutral ones.
        if method != "score" or (calibration == "held-out" and neutral):
            calibration = "none"
        self.calibration = calibration
        self.cache = cache  # a JSON file for held-out offsets (None: keep them in memory only)
        # One "view" per prompt form and shot order, each with its own few-shot prefix.
        self.orders = tuple(range(max(1, orders))) if isinstance(orders, int) else tuple(orders)
        self._views = [(f if o == 0 else f.renamed(f"{f.name}#{o + 1}"), f.prefix(self.labels, shots, o))
                       for f in self.forms for o in self.orders]
        self._prefix = {f.name: p for f, p in self._views}
        self._offsets: dict[str, list[float]] | None = None

    @property
    def views(self) -> list[tuple[PromptForm, str]]:
        """(form, few-shot prefix) per prompt form and shot order, in the order they are scored."""
        return list(self._views)

    def _fit(self, text: str, room: int) -> str:
        """Keep the text within ``room`` tokens (its head), so it fits after the longest prefix."""
        return fit_head(text, self.model.count_tokens, room)[0]

    def _form_scores(self, form: PromptForm, text: str) -> list[float]:
        return self._form_scores_many(form, [text])[0]

    def _form_scores_many(self, form: PromptForm, texts: list[str]) -> list[list[float]]:
        """Each text's label scores under one form, in one :meth:`Model.score_many` call."""
        if form.channel:
            # log P(text | label) per label: same continuation, a different label line before it.
            prefix, n = self._prefix[form.name], len(self.labels)
            requests = [(prefix + form.query.format(w=form.words[lab]), [" " + " ".join(t.split())])
                        for t in texts for lab in self.labels]
            flat = [row[0] for row in self.model.score_many(requests)]
            return [flat[i * n:(i + 1) * n] for i in range(len(texts))]
        conts = [" " + form.words[lab] + self.suffix for lab in self.labels]
        return self.model.score_many([(form.prompt(self._prefix[form.name], t), conts) for t in texts])

    def _scored(self, form: PromptForm, texts: list[str], tick: Callable[[], None],
                cancel: CancelToken | None = None) -> list[list[float]] | None:
        """:meth:`_form_scores_many` in batches of :data:`SCORE_BATCH` texts, ``tick`` per text;
        None once ``cancel`` is set (checked between batches)."""
        out: list[list[float]] = []
        for i in range(0, len(texts), SCORE_BATCH):
            if cancel is not None and cancel.cancelled:
                return None
            out += self._form_scores_many(form, texts[i:i + SCORE_BATCH])
            for _ in texts[i:i + SCORE_BATCH]:
                tick()
        return out

    def offsets(self, tick: Callable[[], None] | None = None) -> dict[str, list[float]]:
        """What each view subtracts from its label scores under the chosen calibration (zeros for
        ``none`` and ``batch``), computed on first use; ``tick`` is called after each scoring."""
        tick = tick or (lambda: None)
        if self._offsets is None:
            offsets = {}
            for form, prefix in self._views:
                if self.calibration == "content-free":
                    rows = self._scored(form, list(CONTENT_FREE), tick) or []
                    offsets[form.name] = [sum(col) / len(rows) for col in zip(*rows, strict=True)]
                elif self.calibration == "held-out":
                    offsets[form.name] = [self._held_out_threshold(form, prefix, tick), 0.0]
                else:
                    offsets[form.name] = [0.0] * len(self.labels)
            self._offsets = offsets
        return self._offsets

    def _calibration_steps(self) -> int:
        """How many scorings ``offsets`` still has to make (for an honest progress total)."""
        if self._offsets is not None:
            return 0
        if self.calibration == "content-free":
            return len(CONTENT_FREE) * len(self._views)
        if self.calibration == "held-out":
            cached = _read_cache(self.cache) if self.cache else {}
            return len(HELD_OUT) * sum(_cache_key(self.model, f, p, self.suffix) not in cached for f, p in self._views)
        return 0

    def _held_out_threshold(self, form: PromptForm, prefix: str, tick: Callable[[], None]) -> float:
        """The view's positive-vs-negative threshold: midway between the mean log-odds of the
        held-out reviews of each label, i.e. the prompt's lean measured on reviews with known labels."""
        key = _cache_key(self.model, form, prefix, self.suffix)
        cached = _read_cache(self.cache).get(key) if self.cache else None
        if isinstance(cached, float):
            return cached
        odds: dict[str, list[float]] = {"positive": [], "negative": []}
        scores = self._scored(form, [text for text, _ in HELD_OUT], tick) or []
        for (_, label), (pos, neg) in zip(HELD_OUT, scores, strict=True):
            odds[label].append(pos - neg)
        threshold = sum(sum(v) / len(v) for v in odds.values()) / 2
        if self.cache:
            _write_cache(self.cache, key, threshold)
        return threshold

    def classify(self, text: str) -> dict[str, Any]:
        return self.classify_many([text])[0]

    def classify_many(self, texts: list[str], progress: Progress | None = None,
                      cancel: CancelToken | None = None) -> list[dict[str, Any]]:
        """Label many texts, prompt form by prompt form, so each few-shot prefix is evaluated once
        and stays in the backend's prefix cache while every text is scored after it."""
        room = self.model.context_length - max(self.model.count_tokens(p) for p in self._prefix.values()) - 32
        self.room = room
        fitted = [fit_head(t, self.model.count_tokens, room) for t in texts]
        read = [{"truncated": cut, "chars_read": len(head)} for head, cut in fitted]
        texts = [head for head, _ in fitted]
        del fitted
        if self.method == "generate":
            return self._generate_many(texts, read, progress, cancel)
        totals = self._mean_logprobs(texts, progress, cancel)
        if totals is None:
            return []
        if self.calibration == "batch" and len(totals) >= BATCH_MIN:
            # Centre each label's mean log-probability on its median over the batch, i.e. assume
            # the labels are about balanced in it (only with many texts).
            medians = [sorted(col)[len(col) // 2] for col in zip(*totals, strict=True)]
            totals = [[t - m for t, m in zip(total, medians, strict=True)] for total in totals]
        results = []
        for total, seen in zip(totals, read, strict=True):
            probs = _softmax(total)
            best = max(range(len(self.labels)), key=probs.__getitem__)
            results.append({
                "label": self.labels[best],
                "confidence": round(probs[best], 4),
                "scores": {lab: round(p, 4) for lab, p in zip(self.labels, probs, strict=True)},
                **seen,
            })
        return results

    def _mean_logprobs(self, texts: list[str], progress: Progress | None,
                       cancel: CancelToken | None) -> list[list[float]] | None:
        """Each text's label log-probabilities, calibrated per view and averaged over the views;
        None once ``cancel`` is set."""
        steps, done = self._calibration_steps() + len(texts) * len(self._views), 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, steps)

        offsets = self.offsets(tick)
        totals = [[0.0] * len(self.labels) for _ in texts]
        for form, _ in self._views:
            scored = self._scored(form, texts, tick, cancel)
            if scored is None:
                return None
            for i, raw in enumerate(scored):
                probs = _softmax([s - o for s, o in zip(raw, offsets[form.name], strict=True)])
                totals[i] = [t + math.log(max(p, 1e-12)) for t, p in zip(totals[i], probs, strict=True)]
        return [[t / len(self._views) for t in total] for total in totals]

    def _generate_many(self, texts: list[str], read: list[dict[str, Any]], progress: Progress | None,
                       cancel: CancelToken | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="lmassist-sentiment") as pool:
            # map keeps input order; with one worker it is the plain loop, one text at a time
            for i, label in enumerate(pool.map(lambda t: self._generate_unless(t, cancel), texts)):
                if label is None:
                    break
                out.append({**label, **read[i]})
                if progress:
                    progress(i + 1, len(texts))
        return out

    def _generate_unless(self, text: str, cancel: CancelToken | None) -> dict[str, Any] | None:
        return None if cancel is not None and cancel.cancelled else self._generate(text)

    def _generate(self, text: str) -> dict[str, Any]:
        """No ``score``: let each form's prompt generate a word, parse it, and vote."""
        votes: dict[str, int] = dict.fromkeys(self.labels, 0)
        opts = GenerationOptions(max_new_tokens=4, temperature=0.0, repetition_penalty=1.0, stop=("\n",))
        # One shot order per direct form (generation is slow); a channel form has no label to generate.
        views = [(f, p) for f, p in self._views[:: len(self.orders)] if not f.channel]
        for form, prefix in views or [(FORMS["review"], FORMS["review"].prefix(self.labels, self.shots))]:
            reply = self.model.complete(form.prompt(prefix, text), opts).result().strip().lower()
            for lab in self.labels:
                if reply.startswith(form.words[lab].lower()):
                    votes[lab] += 1
                    break
        best = max(self.labels, key=lambda lab: (votes[lab], lab == "neutral" and "neutral" in self.labels))
        n = sum(votes.values())
        confidence = votes[best] / n if n else 0.0
        if n == 0:
            best = "neutral" if "neutral" in self.labels else "unknown"
        return {
            "label": best,
            "confidence": round(confidence, 4),
            "scores": {lab: round(v / n, 4) if n else 0.0 for lab, v in votes.items()},
        }


def _softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    es = [math.exp(x - m) for x in xs]
    z = sum(es)
    return [e / z for e in es]


def _cache_key(model: Model, form: PromptForm, prefix: str, suffix: str) -> str:
    """Held-out offsets depend on the model file, the prompt and the reviews, nothing else."""
    ident: list[Any] = [model.info.name]
    path = model.info.details.get("path") or model.info.details.get("source")
    if path and os.path.isfile(path):
        st = os.stat(path)
        ident += [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    blob = json.dumps([ident, prefix, form.query, form.words, form.channel, suffix, HELD_OUT])
    return hashlib.sha256(blob.encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or damaged: computed again, never an error
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, value: float) -> None:
    try:
        atomic_write_text(path, json.dumps({**_read_cache(path), key: value}))
    except OSError:
        pass  # a read-only cache only costs the calibration again next time
