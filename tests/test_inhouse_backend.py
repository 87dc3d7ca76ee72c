"""The in-house backend through the shared generation interface."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from lmassist.backends.inhouse import InhouseBackend, register_backends  # noqa: E402
from lmassist.generation import (  # noqa: E402
    CancelToken,
    GenerationOptions,
    Message,
    ModelLoadError,
    transcript_prompt,  # noqa: E402
)
from lmassist.inhouse.train import TrainConfig, train  # noqa: E402

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n" * 12


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMASSIST_HOME", str(tmp_path / "home"))
    for var in ("LMASSIST_MODELS_DIR", "LMASSIST_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "home"
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny transformer that has learned the cat/dog text well enough to prefer it."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "c.txt").write_text(TEXT)
    out = folder / "catdog"
    torch.set_num_threads(1)
    cfg = TrainConfig(size="tiny", steps=150, batch_size=8, eval_interval=1000, eval_tokens=64, lr=1e-2,
                      model_overrides=dict(n_embd=32, n_layer=1, n_head=2, context_length=32))
    train([folder / "c.txt"], out, cfg, progress=False, log=lambda _: None)
    return out


@pytest.fixture
def model(trained):
    backend = InhouseBackend()
    return backend.load(backend.spec_for(str(trained)))


def test_backend_metadata_is_cheap_and_lists_models(home, trained):
    backend = InhouseBackend()
    assert backend.name == "inhouse" and backend.unavailable_reason() is None
    assert backend.install_hint == "pip install 'lmassist[inhouse]'"
    names = {s.name for s in backend.models()}
    assert "shakespeare" in names  # shipped with the package
    import shutil

    shutil.copytree(trained, home / "data" / "models" / "inhouse" / "mine")
    specs = {s.name: s for s in backend.models()}
    assert specs["mine"].full_name == "inhouse:mine" and specs["mine"].context_length == 32
    assert "transformer" in specs["mine"].description


def test_hook_registers_the_backend():
    found = []
    register_backends(found.append)
    assert isinstance(found[0], InhouseBackend)


def test_unknown_model_is_a_load_error():
    with pytest.raises(ModelLoadError, match="unknown model inhouse:nope"):
        InhouseBackend().spec_for("nope")


def test_model_info(model):
    assert model.info.name == "inhouse:catdog" and model.info.chat_template is False
    assert model.info.context_length == 32 and model.info.device == "cpu"
    assert model.count_tokens("the cat") == 7


def test_streaming_one_piece_per_token(model):
    gen = model.complete("the cat", GenerationOptions(max_new_tokens=12, temperature=0))
    pieces = list(gen)
    assert len(pieces) == 12 and "".join(pieces) == gen.text
    assert gen.stats.generated_tokens == 12 and gen.stats.prompt_tokens == 7
    assert gen.stats.stop_reason == "length"


def test_greedy_continues_the_training_text(model):
    text = model.complete("the dog sat on the", GenerationOptions(max_new_tokens=4, temperature=0,
                                                                   repetition_penalty=1.0)).result()
    assert text == " log"


def test_seed_makes_sampling_reproducible(model):
    opts = GenerationOptions(max_new_tokens=20, temperature=1.5, top_k=0, top_p=1.0, seed=7)
    a = model.complete("a", opts).result()
    b = model.complete("a", opts).result()
    c = model.complete("a", opts.replace(seed=8)).result()
    assert a == b and a != c


def test_stop_strings(model):
    opts = GenerationOptions(max_new_tokens=30, temperature=0, repetition_penalty=1.0, stop=(".",))
    gen = model.complete("the dog sat on the", opts)
    assert gen.result() == " log" and gen.stats.stop_reason == "stop"


def test_cancel_from_another_thread_stops_within_a_token(model):
    cancel = CancelToken()
    gen = model.complete("the", GenerationOptions(max_new_tokens=10_000, temperature=0), cancel)
    seen = 0
    for _ in gen:
        seen += 1
        if seen == 5:
            threading.Thread(target=cancel.cancel).start()
            threading.Event().wait(0.05)
    assert gen.stats.stop_reason == "cancelled" and gen.stats.generated_tokens <= 7


def test_chat_uses_a_transcript_and_stops_at_the_next_turn(model):
    assert transcript_prompt([Message("system", "Be brief."), Message("user", "hi")]) == "System: Be brief.\nUser: hi\nAssistant:"
    gen = model.chat([{"role": "user", "content": "the cat"}], GenerationOptions(max_new_tokens=20, seed=1))
    text = gen.result()
    assert "User:" not in text and gen.stats.prompt_tokens > 0


def test_score_ranks_the_obvious_continuation_higher(model):
    good, bad = model.score("the dog sat on the", [" log", " xqz"])
    assert good > bad and good < 0
    assert model.score("", ["the"])[0] < 0  # an empty prompt still scores


def test_empty_prompt_generates(model):
    assert len(model.complete("", GenerationOptions(max_new_tokens=3)).result()) > 0


@pytest.mark.slow
def test_shipped_shakespeare_model_loads_and_writes_plausible_text():
    backend = InhouseBackend()
    spec = {s.name: s for s in backend.models()}["shakespeare"]
    assert spec.size_bytes < 5 * 1024 * 1024
    model = backend.load(spec)
    text = model.complete("ROMEO:\n", GenerationOptions(max_new_tokens=40, seed=0)).result()
    assert len(text) > 10
    good, bad = model.score("KING HENRY", [" VI:", " zq#"])
    assert good > bad
