"""Tokenizers and data preparation for the in-house models."""

from __future__ import annotations

import pytest

from lmassist.generation import LMAssistError
from lmassist.inhouse.data import encode_ids, normalize, read_corpus, split_text, text_chunks, to_ids
from lmassist.inhouse.tokenizers import (
    UNK,
    BPETokenizer,
    CharTokenizer,
    StreamDecoder,
    tokenizer_from_json,
    train_tokenizer,
)

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler — café ☕\n" * 20


def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.train("hello world\n")
    assert tok.decode(tok.encode("hello")) == "hello"
    assert tok.encode("hex")[-1] == 0 and tok.decode(tok.encode("x")) == UNK
    again = tokenizer_from_json(tok.to_json())
    assert again.chars == tok.chars and again.vocab_size == tok.vocab_size


def test_lowercase_is_applied_when_encoding():
    tok = CharTokenizer.train("Hello", lowercase=True)
    assert tok.encode("HELLO") == tok.encode("hello")


def test_bpe_tokenizer_trains_round_trips_and_saves():
    tok = train_tokenizer("bpe", TEXT, vocab_size=300)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size <= 300
    ids = tok.encode("that is the question ☕")
    assert tok.decode(ids) == "that is the question ☕"
    assert len(ids) < len("that is the question ☕")  # merges were learned
    again = tokenizer_from_json(tok.to_json())
    assert again.encode("nobler café") == tok.encode("nobler café")


def test_stream_decoder_holds_back_partial_utf8():
    tok = train_tokenizer("bpe", "abc", vocab_size=260)  # too little text to merge ☕'s three bytes
    ids = tok.encode("☕!")
    decoder = StreamDecoder(tok)
    pieces = [decoder.piece(i) for i in ids]
    assert "".join(pieces) == "☕!" and len(pieces) == len(ids) and pieces[0] == ""


def test_bad_tokenizer_json_is_rejected():
    with pytest.raises(ValueError):
        tokenizer_from_json('{"type": "nope"}')
    with pytest.raises(ValueError):
        tokenizer_from_json('{"type": "char", "chars": ["ab"]}')


def test_normalize():
    assert normalize("a \r\nb\t\rc\n\n\n\n\nd  \n") == "a\nb\nc\n\nd\n"
    assert normalize("Hello", lowercase=True) == "hello\n"
    assert normalize(" \n\n ") == ""


def test_read_corpus_files_and_folders(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_text("# Title\r\nbody\n")
    (tmp_path / "d" / "b.txt").write_text("second")
    (tmp_path / "d" / "skip.bin").write_bytes(b"\x00\x01")
    text, files = read_corpus([tmp_path / "d"])
    assert [f.name for f in files] == ["a.md", "b.txt"]
    assert text == "# Title\nbody\n\nsecond\n"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.txt", "no such file"),
        (lambda p: (p / "e.txt").write_text("  \n\n") and p / "e.txt", "empty"),
        (lambda p: (p / "b.txt").write_bytes(b"PK\x03\x04\x00\x00") and p / "b.txt", "binary"),
        (lambda p: (p / "l.txt").write_bytes(b"caf\xe9\n") and p / "l.txt", "not UTF-8"),
        (lambda p: (p / "empty_dir").mkdir() or p / "empty_dir", "no text files"),
    ],
)
def test_bad_input_gives_one_line_errors(tmp_path, make, message):
    with pytest.raises(LMAssistError, match=message) as info:
        read_corpus([make(tmp_path)])
    assert "\n" not in str(info.value)


def test_split_keeps_the_last_tenth_for_validation():
    train, val = split_text("x" * 90 + "y" * 10)
    assert train == "x" * 90 and val == "y" * 10


def test_ids_are_one_compact_array():
    arr = to_ids([1, 2, 3], vocab_size=100)
    assert arr.dtype.name == "uint16" and arr.tolist() == [1, 2, 3]


def test_chunked_encoding_gives_the_same_tokens_as_whole_text_encoding():
    text = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n  All:\nSpeak, speak.\n" * 40)
    pieces = list(text_chunks(text, size=50))
    assert len(pieces) > 10 and "".join(pieces) == text
    for tok in (CharTokenizer.train(text), BPETokenizer.train(text, vocab_size=300)):
        arr = encode_ids(tok, text, chunk=50)
        assert arr.dtype.name == "uint16" and arr.tolist() == tok.encode(text)
