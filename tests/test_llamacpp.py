"""The llama.cpp backend on the real default model (SmolLM2-135M-Instruct, Q4_1)."""

from __future__ import annotations

import threading

import pytest

from lmassist.generation import CancelToken, ContextLengthError, GenerationOptions, Message

GREEDY = GenerationOptions(temperature=0, max_new_tokens=24, seed=1)


def test_chat_streams_token_pieces_with_stats(smollm):
    gen = smollm.chat([Message("user", "Name three colours.")], GREEDY)
    chunks = list(gen)
    assert len(chunks) > 3
    assert "".join(chunks) == gen.text and gen.text.strip()
    s = gen.stats
    assert s.prompt_tokens > 5
    assert s.generated_tokens >= len([c for c in chunks if c])
    assert s.time_to_first_token_s is not None and s.tokens_per_s > 0
    assert s.stop_reason in ("eos", "length")


def test_greedy_is_deterministic(smollm):
    msgs = [Message("user", "Write one sentence about the sea.")]
    assert smollm.chat(msgs, GREEDY).result() == smollm.chat(msgs, GREEDY).result()


def test_seeded_sampling_is_reproducible(smollm):
    opts = GenerationOptions(temperature=1.0, max_new_tokens=20, seed=42)
    msgs = [Message("user", "Invent a name for a cat.")]
    assert smollm.chat(msgs, opts).result() == smollm.chat(msgs, opts).result()


def test_stop_string_ends_the_reply(smollm):
    opts = GenerationOptions(temperature=0, max_new_tokens=60)
    full = smollm.complete("1, 2, 3, 4, 5,", opts).result()
    assert " 7" in full
    gen = smollm.complete("1, 2, 3, 4, 5,", opts.replace(stop=[" 7"]))
    text = gen.result()
    assert gen.stats.stop_reason == "stop"
    assert " 7" not in text and full.startswith(text)


def test_length_limit(smollm):
    gen = smollm.complete("Once upon a time", GenerationOptions(temperature=0, max_new_tokens=5))
    gen.result()
    assert gen.stats.generated_tokens == 5 and gen.stats.stop_reason == "length"


def test_cancel_from_another_thread_stops_within_a_token(smollm):
    token = CancelToken()
    gen = smollm.chat([Message("user", "Tell me a very long story about dragons.")],
                      GenerationOptions(temperature=0, max_new_tokens=400), token)
    seen = []
    cancelled_at = None
    for chunk in gen:
        seen.append(chunk)
        if len(seen) == 8:
            threading.Thread(target=token.cancel).start()
            cancelled_at = len(seen)
    assert gen.interrupted
    assert gen.stats.stop_reason == "cancelled"
    assert len(seen) <= cancelled_at + 2
    assert gen.text == "".join(seen) and gen.text


def test_score_ranks_obvious_continuation_first(smollm):
    prompt = "The capital of France is"
    right, wrong = smollm.score(prompt, [" Paris", " potato"])
    assert right > wrong
    # scoring must not disturb generation that follows it
    assert smollm.complete(prompt, GREEDY.replace(max_new_tokens=3)).result().strip()


def test_score_is_consistent_with_prefix_reuse(smollm):
    a = smollm.score("One, two, three,", [" four", " four five"])
    b = smollm.score("One, two, three,", [" four"])
    assert a[0] == pytest.approx(b[0], abs=1e-3)
    assert a[1] < a[0] < 0


def test_count_tokens_and_context(smollm):
    assert smollm.count_tokens("hello world") in (2, 3)
    assert smollm.context_length >= 2048
    assert smollm.info.chat_template


@pytest.fixture(scope="module")
def small_context(default_gguf):
    """The default model with a 512-token window, so overflowing it is quick to evaluate."""
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    model = Registry(PluginManager(load_entry_points=False)).load(
        "llamacpp:smollm2-135m-instruct", threads=1, n_ctx=512
    )
    yield model
    model.close()


def test_long_conversation_is_trimmed_from_the_oldest_turns(small_context):
    filler = "word " * 100
    msgs = []
    for i in range(8):
        msgs += [Message("user", f"turn {i}: {filler}"), Message("assistant", "ok")]
    msgs.append(Message("user", "Say hi."))
    gen = small_context.chat(msgs, GREEDY.replace(max_new_tokens=4))
    gen.result()
    assert small_context.context_length == 512
    assert 0 < gen.stats.prompt_tokens <= 512 - 4
    assert gen.stats.generated_tokens > 0


def test_a_prompt_longer_than_the_context_is_refused_with_numbers(small_context):
    with pytest.raises(ContextLengthError, match=r"\d+ tokens"):
        small_context.complete("word " * 1000, GREEDY).result()
    with pytest.raises(ContextLengthError, match=r"\d+ tokens"):
        small_context.chat([Message("user", "word " * 1000)], GREEDY).result()


def test_long_prompt_prefixes_are_saved_and_restored_across_loads(default_gguf, monkeypatch):
    """Scoring saves a long prompt's evaluated prefix; a later load of the model resumes from the
    file instead of evaluating it again, with the same scores; a damaged file is evaluated again
    and replaced."""
    from lmassist.backends.llamacpp_prefixes import BLOCK, PrefixStates
    from lmassist.config import paths
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    def load():
        return Registry(PluginManager(load_entry_points=False)).load("llamacpp:smollm2-135m-instruct", threads=1)

    prompt = "".join(f"Review: film number {i} was {'good' if i % 2 else 'bad'} .\nSentiment: ok\n\n" for i in range(40))
    conts = [" positive", " negative", " a longer ending"]
    first = load()
    assert first.count_tokens(prompt) > BLOCK
    expected = first.score(prompt, conts)
    first.close()
    files = list((paths().cache / "llamacpp-prefixes").glob("*.kv"))
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000

    restored: list[int] = []
    real_restore = PrefixStates.restore

    def spy(self, ctx, tokens, valid):
        got = real_restore(self, ctx, tokens, valid)
        restored.append(got)
        return got

    monkeypatch.setattr(PrefixStates, "restore", spy)
    second = load()
    assert second.score(prompt, conts) == pytest.approx(expected, abs=1e-3)
    second.close()
    assert restored and restored[0] % BLOCK == 0 and restored[0] > 0  # resumed from the file

    files[0].write_bytes(b"not a llama.cpp state")
    restored.clear()
    third = load()
    assert third.score(prompt, conts) == pytest.approx(expected, abs=1e-3)
    third.close()
    assert restored[0] == 0 and files[0].stat().st_size > 1_000_000  # evaluated again, file replaced


def test_prefix_files_keep_only_the_most_recently_used(tmp_path):
    import os

    from lmassist.backends.llamacpp_prefixes import KEEP, prune

    for i in range(KEEP + 3):
        f = tmp_path / f"{i:02d}.kv"
        f.write_bytes(b"x")
        os.utime(f, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "notes.txt").write_text("not a state file")
    prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.kv")) == [f"{i:02d}.kv" for i in range(3, KEEP + 3)]
    assert (tmp_path / "notes.txt").exists()
