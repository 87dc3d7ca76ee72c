"""The Kneser-Ney baseline, and int8 quantization / pruning of in-house models."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lmassist.inhouse import checkpoint as ckpt  # noqa: E402
from lmassist.inhouse.int8 import dequantize_state, quantize_state  # noqa: E402
from lmassist.inhouse.model import generate  # noqa: E402
from lmassist.inhouse.ngram import KneserNey, baseline_for_checkpoint  # noqa: E402
from lmassist.inhouse.optimize import optimize_checkpoint, prune_magnitude  # noqa: E402
from lmassist.inhouse.train import TrainConfig, train  # noqa: E402

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n" * 16


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_kneser_ney_probabilities_sum_to_one_and_cover_unseen_tokens():
    ids = [1, 2, 3, 1, 2, 4, 1, 2, 3, 3, 2, 1] * 5
    lm = KneserNey(order=3, vocab_size=8).fit(ids)
    for history in ([1, 2], [3], [], [7, 7]):
        total = sum(lm.prob(history, w) for w in range(8))
        assert math.isclose(total, 1.0, rel_tol=1e-9)
    assert lm.prob([1, 2], 7) > 0  # token 7 never appears in training


def test_kneser_ney_perplexity_is_finite_and_beats_uniform():
    tokens = [ord(c) % 64 for c in TEXT]
    cut = int(len(tokens) * 0.9)
    lm = KneserNey(order=4, vocab_size=64).fit(tokens[:cut])
    unseen = tokens[cut:] + [63, 62]  # characters it has never seen
    result = lm.evaluate(unseen)
    assert math.isfinite(result.perplexity) and result.perplexity < 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opt")
    (folder / "c.txt").write_text(TEXT)
    torch.set_num_threads(1)
    cfg = TrainConfig(size="tiny", steps=40, batch_size=8, eval_interval=1000, eval_tokens=64, lr=1e-2,
                      model_overrides=dict(n_embd=32, n_layer=2, n_head=2, context_length=32))
    train([folder / "c.txt"], folder / "m", cfg, progress=False, log=lambda _: None)
    return folder / "m"


def test_baseline_trains_on_the_checkpoints_own_training_split(model_dir):
    lm, info = baseline_for_checkpoint(ckpt.load_checkpoint(model_dir), order=3)
    assert info.startswith(f"{int(len(TEXT) * 0.9) - 1:,}") or "training tokens" in info
    assert lm.vocab_size == ckpt.load_checkpoint(model_dir).tokenizer.vocab_size


def test_quantize_state_round_trip_is_close():
    w = torch.randn(8, 16)
    q = quantize_state({"w": w, "b": torch.randn(8)})
    assert q["w"].dtype == torch.int8
    back = dequantize_state(q)["w"]
    assert (back - w).abs().max() <= w.abs().max() / 127


def test_pruning_is_permanent_magnitude_pruning(model_dir):
    model = ckpt.load_checkpoint(model_dir).model
    sparsity = prune_magnitude(model, 0.3)
    assert 0.29 < sparsity < 0.35
    w = model.blocks[0].mlp.fc.weight
    assert not hasattr(model.blocks[0].mlp.fc, "weight_mask")  # no re-parametrisation left
    assert float((w == 0).float().mean()) >= 0.29


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_int8_and_pruned_models_are_smaller_and_load_and_generate(tmp_path, arch):
    (tmp_path / "c.txt").write_text(TEXT)
    overrides = (dict(n_embd=32, n_layer=2, n_head=2, context_length=32) if arch == "transformer"
                 else dict(n_embd=32, n_hidden=64, n_layer=1, context_length=32))
    cfg = TrainConfig(arch=arch, size="tiny", steps=30, batch_size=8, eval_interval=1000, eval_tokens=64,
                      lr=1e-2, model_overrides=overrides)
    train([tmp_path / "c.txt"], tmp_path / "m", cfg, progress=False, log=lambda _: None)
    report = optimize_checkpoint(tmp_path / "m", tmp_path / "q", quantize="int8", prune=0.3, speed_tokens=20)
    assert report.after.size_bytes < 0.45 * report.before.size_bytes
    assert report.before.perplexity and report.after.perplexity < report.before.perplexity * 1.5
    loaded = ckpt.load_checkpoint(tmp_path / "q")
    assert loaded.quantization == "int8" and loaded.config["pruned"] == 0.3
    head = loaded.model.lm_head if arch == "transformer" else loaded.model.head
    assert type(head) is torch.nn.Linear and head.weight.dtype == torch.float32  # fp32 once loaded
    assert len(list(generate(loaded.model, [1, 2], 10, temperature=0))) == 10
    assert any("size" in line for line in report.lines())
