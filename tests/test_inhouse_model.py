"""The in-house models themselves: shapes, causality, KV cache, sampling, and that they can learn."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lmassist.inhouse.model import (  # noqa: E402
    RecurrentConfig,
    TransformerConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    generate,
    lm_loss,
    sample_next,
)

V = 11


@pytest.fixture(autouse=True)
def one_thread():
    """The test machines are small and shared: one intra-op thread avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(arch: str, **kw):
    torch.manual_seed(0)
    if arch == "transformer":
        cfg = TransformerConfig(vocab_size=V, context_length=16, n_layer=2, n_head=2, n_embd=16, **kw)
    else:
        cfg = RecurrentConfig(vocab_size=V, arch=arch, context_length=16, n_layer=2, n_embd=8, n_hidden=16, **kw)
    return build_model(cfg).eval()


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rnn"])
def test_shapes(arch):
    model = tiny(arch)
    logits, _ = model(torch.randint(V, (3, 7)))
    assert logits.shape == (3, 7, V)


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rnn"])
def test_changing_a_future_token_never_changes_earlier_logits(arch):
    model = tiny(arch)
    x = torch.randint(V, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % V
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_weight_tying_shares_one_matrix():
    model = tiny("transformer")
    assert model.lm_head.weight is model.wte.weight


def test_transformer_rejects_sequences_longer_than_its_context():
    with pytest.raises(ValueError, match="context"):
        tiny("transformer")(torch.zeros(1, 17, dtype=torch.long))


def test_kv_cache_prefill_then_steps_matches_full_forward():
    model = tiny("transformer")
    x = torch.randint(V, (1, 10))
    with torch.no_grad():
        full, _ = model(x)
        cache = model.init_state(1)
        part, cache = model(x[:, :6], cache)
        rest = [model(x[:, i : i + 1], cache)[0] for i in range(6, 8)]
        chunk, cache = model(x[:, 8:10], cache)  # several new tokens after a cached prefix
    got = torch.cat([part, *rest, chunk], dim=1)
    assert torch.allclose(full, got, atol=1e-5)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_cached_and_uncached_greedy_generation_agree(arch):
    model = tiny(arch)
    prompt = [1, 2, 3]
    cached = list(generate(model, prompt, 12, temperature=0, use_cache=True))
    uncached = list(generate(model, prompt, 12, temperature=0, use_cache=False))
    assert cached == uncached and len(cached) == 12


def test_generation_past_the_context_keeps_going():
    model = tiny("transformer")
    out = list(generate(model, [1, 2], 40, temperature=0))
    assert len(out) == 40


def test_seeded_sampling_is_reproducible():
    model = tiny("transformer")
    runs = [list(generate(model, [1], 10, generator=torch.Generator().manual_seed(5))) for _ in range(2)]
    assert runs[0] == runs[1]


def test_sampling_filters():
    logits = torch.tensor([5.0, 4.0, 1.0, 0.0])
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, temperature=0) == 0
    assert {sample_next(logits, top_k=2, generator=g) for _ in range(50)} <= {0, 1}
    assert {sample_next(logits, top_p=0.5, generator=g) for _ in range(50)} == {0}
    # a strong repetition penalty moves greedy decoding off the token already used
    assert sample_next(logits, history=[0], temperature=0, repetition_penalty=10.0) == 1


def test_config_round_trip_and_bad_config():
    cfg = TransformerConfig(vocab_size=5)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError):
        config_from_dict({"arch": "gru", "vocab_size": 5})
    with pytest.raises(ValueError):
        config_from_dict({"arch": "lstm", "vocab_size": 5, "bogus": 1})


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_a_tiny_model_overfits_a_tiny_text(arch):
    torch.manual_seed(0)
    text = [i % 7 for i in range(0, 33)] * 4
    data = torch.tensor(text)
    model = tiny(arch).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = data[:-1].view(1, -1)[:, :16], data[1:].view(1, -1)[:, :16]
    first = None
    for _ in range(150):
        logits, _ = model(x)
        loss = lm_loss(logits, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < min(0.3, first / 5)  # from ~ln(11) = 2.4 to near zero
