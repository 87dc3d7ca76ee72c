"""The shared generation interface, on a scripted model, so its own logic is tested exactly."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lmassist.generation import (
    CancelToken,
    ContextLengthError,
    GenerationOptions,
    LMAssistError,
    Message,
    Model,
    ModelInfo,
    StreamRequest,
    fit_messages,
)


class ScriptedModel(Model):
    """Yields fixed pieces, one per 'token': the contract's behaviour, not a model's, is under test."""

    def __init__(self, pieces: list[str], on_piece=None) -> None:
        self.pieces = pieces
        self.on_piece = on_piece
        self.info = ModelInfo(name="test:scripted", backend="test", context_length=64, chat_template=True)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        request.prompt_tokens = 7
        for i, p in enumerate(self.pieces[: request.options.max_new_tokens]):
            if self.on_piece:
                self.on_piece(i)
            yield p

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_stream_collects_text_and_stats():
    gen = ScriptedModel(["Hel", "lo", " world"]).complete("hi")
    assert list(gen) == ["Hel", "lo", " world"]
    assert gen.text == "Hello world"
    assert gen.stats.prompt_tokens == 7
    assert gen.stats.generated_tokens == 3
    assert gen.stats.stop_reason == "eos"
    assert gen.stats.time_to_first_token_s is not None


def test_length_stop_reason():
    gen = ScriptedModel(["a", "b", "c", "d"]).complete("x", GenerationOptions(max_new_tokens=2))
    assert gen.result() == "ab"
    assert gen.stats.stop_reason == "length"


def test_stop_string_split_across_pieces_is_never_shown():
    gen = ScriptedModel(["Answer: yes", "\nUs", "er:", " more"]).complete("q", GenerationOptions(stop=("\nUser:",)))
    chunks = list(gen)
    assert "".join(chunks) == "Answer: yes"
    assert all("User" not in c for c in chunks)
    assert gen.stats.stop_reason == "stop"


def test_held_back_prefix_is_released_when_it_is_not_a_stop():
    gen = ScriptedModel(["a\nU", "nder"]).complete("q", GenerationOptions(stop=("\nUser:",)))
    assert gen.result() == "a\nUnder"
    assert gen.stats.stop_reason == "eos"


def test_cancel_from_another_thread_keeps_partial_text():
    token = CancelToken()
    started = threading.Event()
    release = threading.Event()

    def on_piece(i: int) -> None:
        if i == 2:
            started.set()
            release.wait(5)

    gen = ScriptedModel([str(i) for i in range(10)], on_piece).complete("q", cancel=token)
    t = threading.Thread(target=lambda: (started.wait(5), token.cancel(), release.set()))
    t.start()
    text = gen.result()
    t.join()
    assert gen.interrupted
    assert text == "012"  # the piece in flight when cancel arrived is the last one


def test_options_from_pairs_parses_types_and_rejects_unknown():
    opts = GenerationOptions.from_pairs([("temperature", "0"), ("max_tokens", "5"), ("stop", "\\n"), ("seed", "3")])
    assert opts.greedy and opts.max_new_tokens == 5 and opts.stop == ("\n",) and opts.seed == 3
    with pytest.raises(LMAssistError, match="unknown option 'bogus'"):
        GenerationOptions.from_pairs([("bogus", "1")])
    with pytest.raises(LMAssistError, match="needs a number"):
        GenerationOptions.from_pairs([("top_p", "high")])
    with pytest.raises(LMAssistError, match="top_p"):
        GenerationOptions.from_pairs([("top_p", "2")])


def test_empty_conversation_is_an_error():
    with pytest.raises(LMAssistError, match="empty"):
        ScriptedModel([]).chat([])


def test_fit_messages_drops_oldest_turns_but_keeps_system_and_last():
    msgs = [Message("system", "s")] + [Message("user", "word " * 10), Message("assistant", "word " * 10)] * 3
    msgs.append(Message("user", "last question"))

    def count(ms):
        return sum(len(m.content.split()) for m in ms)

    fitted = fit_messages(msgs, count, 25)
    assert fitted[0].role == "system" and fitted[-1].content == "last question"
    assert count(fitted) <= 25
    with pytest.raises(ContextLengthError, match="tokens"):
        fit_messages([Message("user", "word " * 100)], count, 25)


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("temperature", "nan", "finite"), ("temperature", "inf", "finite"), ("temperature", "-inf", "finite"),
    ("top_p", "nan", "finite"), ("repetition_penalty", "inf", "finite"), ("temperature", "-0.5", "0..100"),
    ("top_p", "0", "(0, 1]"), ("max_new_tokens", "0", "1.."), ("max_new_tokens", "2.5", "whole number"),
    ("top_k", "-1", ">= 0"), ("seed", "-1", "seed"), ("seed", str(2**32), "seed"), ("stop", "", "stop"),
])
def test_option_values_are_checked_before_any_model(key, value, needle):
    from lmassist.generation import parse_option_pairs

    with pytest.raises(LMAssistError, match=needle.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_option_pairs([(key, value)])


def test_stop_escapes_never_raise_and_keep_non_ascii():
    from lmassist.generation import decode_escapes, parse_option_pairs

    assert parse_option_pairs([("stop", "\\x")]) == {"stop": ("\\x",)}  # said "needs a number" before
    assert parse_option_pairs([("stop", "\\n"), ("stop", "END")]) == {"stop": ("\n", "END")}
    assert decode_escapes("é\\u00e9\\x41\\t\\\\n\\q") == "éé\u0041\t\\n\\q"
    opts = GenerationOptions.from_pairs([("temperature", "0"), ("stop", "\\u")], base=GenerationOptions(top_k=5))
    assert opts.temperature == 0 and opts.top_k == 5 and opts.stop == ("\\u",)


def test_score_many_defaults_to_score_in_order():
    """Every backend with ``score`` gets ``score_many``: one pair at a time, results in input order."""
    from lmassist.generation import ModelInfo
    from lmassist.generation.model import Model

    class Scorer(Model):
        info = ModelInfo(name="scorer", backend="test", context_length=64, chat_template=False)

        def stream_pieces(self, request):
            yield ""

        def count_tokens(self, text):
            return len(text)

        def score(self, prompt, continuations):
            return [-float(len(prompt) + len(c)) for c in continuations]

    model = Scorer()
    assert not model.parallel_safe
    assert model.score_many([("ab", ["x", "yy"]), ("", ["zzz"])]) == [[-3.0, -4.0], [-3.0]]
