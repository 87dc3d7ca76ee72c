"""Several sequences per llama.cpp decode, sharing the few-shot prefix: does it beat one at a time?

``lmassist bench sentiment --throughput --multi-seq`` answers it on this machine. A second context of
the same model (``n_seq_max`` above the batch, one unified KV cache) evaluates the prefix once on
sequence 0, copies it to N sequences and decodes the N reviews' tokens in one ``llama_decode``; the
model's own ``score`` does the same reviews one at a time with the prefix cached. The backend uses
the batched form only if it is faster here: on 2 cores it was not (docs/benchmarks.md), so
``LlamaCppModel`` keeps the one-at-a-time ``score_many``.
"""

from __future__ import annotations

import time
from typing import Any

from lmassist.generation import common_prefix_length
from lmassist.tasks.sentiment_classifier import SentimentClassifier

N_BATCH = 4096


def _decode_groups(lib: Any, ctx: Any, batch: Any, prefix: int, suffixes: list[list[int]], per: int,
                   n_vocab: int, label_ids: list[int]) -> list[list[float]]:
    """Each suffix's label log-probabilities, ``per`` sequences per decode after the shared prefix."""
    import numpy as np

    mem = lib.llama_get_memory(ctx)
    out: list[list[float]] = []
    for g in range(0, len(suffixes), per):
        n, lasts = 0, []
        for s, ids in enumerate(suffixes[g:g + per], 1):
            lib.llama_memory_seq_rm(mem, s, -1, -1)
            lib.llama_memory_seq_cp(mem, 0, s, 0, prefix)
            for i, token in enumerate(ids):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, prefix + i, 1
                batch.seq_id[n][0], batch.logits[n] = s, i == len(ids) - 1
                n += 1
            lasts.append(n - 1)
        batch.n_tokens = n
        lib.llama_decode(ctx, batch)
        for j in lasts:
            row = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, j), shape=(n_vocab,)).astype(np.float64)
            top = row.max()
            lse = top + np.log(np.exp(row - top).sum())
            out.append([float(row[t] - lse) for t in label_ids])
    return out


def measure_multi_sequence(model: Any, texts: list[str], sizes: tuple[int, ...] = (8, 32)) -> dict[str, Any]:
    """Seconds for the reviews one at a time vs ``size`` sequences per decode, and the largest
    difference in the label log-probabilities (first shot order, label words of one token)."""
    import llama_cpp as lib

    clf = SentimentClassifier(model, calibration="none")
    form, prefix_text = clf.views[0]
    conts = [" " + form.words[lab] for lab in clf.labels]
    llm = model.llama
    tokenize = lambda s: llm.tokenize(s.encode("utf-8"), add_bos=True, special=True)  # noqa: E731
    prompts = [form.prompt(prefix_text, t) for t in texts]
    ids = [tokenize(p) for p in prompts]
    label_ids = [tokenize(prompts[0] + c)[-1] for c in conts]
    if any(tokenize(prompts[0] + c) != [*ids[0], t] for c, t in zip(conts, label_ids, strict=True)):
        return {"multi_seq": "n/a: the label words are not one token each for this model"}
    prefix = min(common_prefix_length(tokenize(prefix_text), i) for i in ids) - 1
    model.score(prompts[0], conts)  # the prefix into the model's cache, outside the timing
    start = time.perf_counter()
    reference = [model.score(p, conts) for p in prompts]
    figures: dict[str, Any] = {"multi_seq_reviews": len(texts), "one_at_a_time_s": round(time.perf_counter() - start, 2)}
    params = lib.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = N_BATCH * 2, N_BATCH, 512
    params.n_seq_max, params.kv_unified = max(sizes) + 1, True
    params.n_threads = params.n_threads_batch = llm.context_params.n_threads
    ctx = lib.llama_init_from_model(llm.model, params)
    batch = lib.llama_batch_init(N_BATCH, 0, max(sizes) + 1)
    try:
        _decode_groups(lib, ctx, batch, 0, [ids[0][:prefix]], 1, llm.n_vocab(), label_ids)  # prefix on seq 1
        lib.llama_memory_seq_cp(lib.llama_get_memory(ctx), 1, 0, 0, prefix)
        suffixes = [i[prefix:] for i in ids]
        _decode_groups(lib, ctx, batch, prefix, suffixes[:max(sizes)], max(sizes), llm.n_vocab(), label_ids)  # warm-up
        for per in sizes:
            start = time.perf_counter()
            got = _decode_groups(lib, ctx, batch, prefix, suffixes, per, llm.n_vocab(), label_ids)
            figures[f"{per}_per_decode_s"] = round(time.perf_counter() - start, 2)
            figures[f"{per}_per_decode_speedup"] = round(figures["one_at_a_time_s"] / figures[f"{per}_per_decode_s"], 3)
            figures[f"{per}_per_decode_max_diff_nats"] = round(max(
                abs(a - b) for x, y in zip(got, reference, strict=True) for a, b in zip(x, y, strict=True)), 4)
    finally:
        lib.llama_batch_free(batch)
        lib.llama_free(ctx)
    return figures
