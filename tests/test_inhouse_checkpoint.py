"""Checkpoints: save → load round trip, damaged files, atomic writes, and resuming training."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from lmassist.generation import LMAssistError, ModelLoadError  # noqa: E402
from lmassist.inhouse import checkpoint as ckpt  # noqa: E402
from lmassist.inhouse.train import TrainConfig, train  # noqa: E402

TINY = dict(n_embd=16, n_layer=1, n_head=2, context_length=16)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat. the dog sat on the log.\n" * 12)
    return path


def tiny_config(arch="transformer", **kw):
    overrides = TINY if arch == "transformer" else dict(n_embd=8, n_hidden=16, n_layer=1, context_length=16)
    return TrainConfig(arch=arch, size="tiny", batch_size=4, eval_interval=3, eval_tokens=64,
                       model_overrides=overrides, **kw)


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rnn"])
def test_round_trip_gives_identical_logits(tmp_path, corpus, arch):
    out = tmp_path / "m"
    train([corpus], out, tiny_config(arch, steps=3), progress=False, log=lambda _: None)
    assert {p.name for p in out.iterdir()} == {"config.json", "tokenizer.json", "model.safetensors",
                                               "history.json", "train_state.safetensors"}
    a = ckpt.load_checkpoint(out)
    b = ckpt.load_checkpoint(out)
    x = torch.tensor([a.tokenizer.encode("the cat sat")])
    assert torch.equal(a.model(x)[0], b.model(x)[0])
    # the saved weights are exactly those of the model that was saved
    state = ckpt.unique_state(a.model.state_dict())
    ckpt.save_checkpoint(tmp_path / "copy", {"model": a.config["model"]}, a.tokenizer, state)
    c = ckpt.load_checkpoint(tmp_path / "copy")
    assert torch.equal(a.model(x)[0], c.model(x)[0])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary folders left behind


@pytest.fixture
def saved(tmp_path, corpus):
    out = tmp_path / "m"
    train([corpus], out, tiny_config(steps=2), progress=False, log=lambda _: None)
    return out


@pytest.mark.parametrize(
    "damage, names",
    [
        (lambda p: (p / "model.safetensors").write_bytes(b"\x10\x00garbage"), "model.safetensors"),
        (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda p: (p / "config.json").write_text("{not json"), "config.json is corrupt"),
        (lambda p: (p / "config.json").unlink(), "config.json is missing"),
        (lambda p: (p / "tokenizer.json").write_text("[1, 2]"), "tokenizer.json is corrupt"),
        (lambda p: (p / "history.json").write_text("{"), "history.json is corrupt"),
    ],
)
def test_damaged_checkpoint_gives_a_one_line_error_naming_the_file(saved, damage, names):
    damage(saved)
    with pytest.raises(ModelLoadError, match=names) as info:
        ckpt.load_checkpoint(saved)
    assert "\n" not in str(info.value)


def test_truncated_weights_are_reported(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        ckpt.load_checkpoint(saved)


def test_vocabulary_mismatch_is_reported(saved):
    tok = json.loads((saved / "tokenizer.json").read_text())
    tok["chars"] = tok["chars"][:-1]
    (saved / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelLoadError, match="vocabulary mismatch"):
        ckpt.load_checkpoint(saved)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no in-house checkpoint"):
        ckpt.load_checkpoint(tmp_path / "nope")


def test_an_interrupted_write_leaves_the_old_checkpoint(saved, monkeypatch):
    before = (saved / "model.safetensors").read_bytes()
    a = ckpt.load_checkpoint(saved)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "_swap_in", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(saved, {"model": a.config["model"]}, a.tokenizer, ckpt.unique_state(a.model.state_dict()))
    assert (saved / "model.safetensors").read_bytes() == before
    assert not list(saved.parent.glob(".m.tmp-*"))


def test_resume_continues_from_the_saved_step(tmp_path, corpus):
    out = tmp_path / "m"
    first = train([corpus], out, tiny_config(steps=4), progress=False, log=lambda _: None)
    assert first.step == 4
    saved = json.loads((out / "config.json").read_text())["training"]
    assert saved["step"] == 4
    second = train([corpus], out, tiny_config(steps=7), resume=True, progress=False, log=lambda _: None)
    assert second.step == 7 and second.tokens > first.tokens
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == [3, 4, 6, 7]


def test_resume_without_state_is_a_clear_error(tmp_path, corpus):
    with pytest.raises(LMAssistError, match="nothing to resume"):
        train([corpus], tmp_path / "none", tiny_config(steps=2), resume=True, progress=False)
