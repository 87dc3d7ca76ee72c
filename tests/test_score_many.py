"""Batched scoring (``Model.score_many``) gives what one pair at a time gives: on a tiny GPT-2 built
here (the real transformers path: padding, positions, the shared prefix's cache), on the default
model through transformers (a Llama with rotary positions) and through llama.cpp."""

from __future__ import annotations

import pytest
from test_hf import tiny, tiny_gpt2  # noqa: F401 - fixtures
from test_hf_gguf import gguf_cache, hf_smollm  # noqa: F401 - fixtures

torch = pytest.importorskip("torch")

SHOTS = "The sea was wide and blue. Label: calm\nThe cats were small and grey. Label: dull\n" * 3


def _requests() -> list[tuple[str, list[str]]]:
    """A few-shot prefix before texts of different lengths, one-token and longer continuations,
    an empty continuation, a prompt with nothing in common with the others and an empty prompt."""
    texts = ["Cats.", "The sea was wide and the cats were small, grey and naïve about it all.",
             "Déjà vu: words with accents, dogs and the sea.", "Once upon a time"]
    reqs = [(f"{SHOTS}{t} Label:", [" calm", " dull", " calm and wide", ""]) for t in texts]
    reqs.append(("Dogs and", [" the sea", " cats"]))
    reqs.append(("", [" The sea"]))
    return reqs


def _assert_same(model, requests, abs_tol: float) -> None:
    batched = model.score_many(requests)
    single = [model.score(p, c) for p, c in requests]
    assert [len(r) for r in batched] == [len(c) for _, c in requests]
    for got, want in zip(batched, single, strict=True):
        assert got == pytest.approx(want, abs=abs_tol)
    assert all(s < 0 for row in single for s in row if s != 0.0)
    assert batched[0][3] == 0.0  # the empty continuation


def test_tiny_gpt2_batched_equals_one_at_a_time(tiny) -> None:  # noqa: F811
    _assert_same(tiny, _requests(), 1e-4)


def test_tiny_gpt2_small_memory_budget_splits_into_many_batches(tiny, monkeypatch) -> None:  # noqa: F811
    from lmassist.backends import hf_batch

    seen: list[int] = []
    forward = hf_batch.BatchScorer._forward

    def counting(self, batch, past, cache):
        seen.append(len(batch))
        return forward(self, batch, past, cache)

    monkeypatch.setattr(hf_batch.BatchScorer, "_forward", counting)
    monkeypatch.setattr(hf_batch.BatchScorer, "budget", lambda self: 3 * self.row_bytes(60, 30, 3))
    _assert_same(tiny, _requests(), 1e-4)
    batched_calls = seen[: len(seen)]
    assert max(batched_calls) <= 3 and len(batched_calls) > 3


def test_tiny_gpt2_out_of_memory_halves_the_batch(tiny, monkeypatch) -> None:  # noqa: F811
    """A batch that runs out of memory in spite of the estimate is split and retried, same scores."""
    from lmassist.backends import hf_batch

    forward = hf_batch.BatchScorer._forward
    sizes: list[int] = []

    def picky(self, batch, past, cache):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(self, batch, past, cache)

    monkeypatch.setattr(hf_batch.BatchScorer, "_forward", picky)
    _assert_same(tiny, _requests(), 1e-4)
    assert sizes[0] > 2 and 2 in sizes


def test_shared_prefix_is_evaluated_once_and_rows_hold_only_their_own_tokens(tiny) -> None:  # noqa: F811
    from lmassist.backends.hf_batch import plan_rows, shared_prefix

    reqs = [(p, [*c, "."]) for p, c in _requests()[:4]]  # one character: one token
    rows, results = plan_rows(reqs, lambda t: tiny._encode(t, special=True), tiny._bos, tiny.context_length)
    encode = lambda t: tiny._encode(t, special=True)  # noqa: E731
    one_token = multi = 0
    for p, conts in reqs:
        n = [len(encode(p + c)) - len(encode(p)) for c in conts if c]
        one_token += any(k == 1 for k in n)
        multi += sum(k > 1 for k in n)
    assert one_token == len(reqs)
    # continuations one token past the prompt share the prompt's row; the rest have a row each
    assert len(rows) == one_token + multi and all(results[i][3] == 0.0 for i in range(4))
    prefix = shared_prefix(rows)
    assert prefix >= len(tiny._encode(SHOTS, special=True)) - 2
    assert all(len(r.ids) - prefix >= r.keep for r in rows)


def test_the_default_model_through_transformers_batched_equals_one_at_a_time(hf_smollm) -> None:  # noqa: F811
    """Rotary positions: a left-padded row must read positions from real tokens only."""
    _assert_same(hf_smollm, _requests(), 2e-3)


def test_llamacpp_score_many_equals_one_at_a_time(smollm) -> None:
    _assert_same(smollm, _requests(), 2e-2)
