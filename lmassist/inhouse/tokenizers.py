"""Tokenizers: characters, or byte-level BPE trained with the ``tokenizers`` library.

Both save to one JSON file (``tokenizer.json``) in the checkpoint folder and load back without
pickle. Both can report the *bytes* of every token, which lets the backend stream text token by
token even when one character is split over several BPE tokens (see :class:`StreamDecoder`).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

UNK = "\ufffd"  # the replacement character stands for characters the char vocabulary lacks
EOS = "<|endoftext|>"
KINDS = ("char", "bpe")


class Tokenizer(Protocol):
    kind: str
    vocab_size: int
    eos_id: int | None

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def token_bytes(self, token: int) -> bytes: ...
    def start_id(self) -> int: ...
    def to_json(self) -> str: ...


class CharTokenizer:
    """One token per character. Characters not seen in training map to ``UNK`` (id 0)."""

    kind = "char"
    eos_id = None

    def __init__(self, chars: Iterable[str], lowercase: bool = False) -> None:
        self.chars = [UNK] + sorted(set(chars) - {UNK})
        self.lowercase = lowercase
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str, lowercase: bool = False) -> CharTokenizer:
        return cls(set(text.lower() if lowercase else text), lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        if self.lowercase:
            text = text.lower()
        get = self.index.get
        return [get(c, 0) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def token_bytes(self, token: int) -> bytes:
        return self.chars[token].encode("utf-8")

    def start_id(self) -> int:
        """What to feed a model before an empty prompt: a newline, the start of a fresh line."""
        return self.index.get("\n", 0)

    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": self.chars, "lowercase": self.lowercase}, ensure_ascii=False)


class BPETokenizer:
    """Byte-level BPE (the GPT-2 scheme): any text encodes, no unknown tokens."""

    kind = "bpe"

    def __init__(self, tok: Any, lowercase: bool = False) -> None:
        self.tok = tok
        self.lowercase = lowercase
        self.eos_id = tok.token_to_id(EOS)
        self._bytes = _unicode_to_bytes()

    @classmethod
    def train(cls, text: str, vocab_size: int = 1024, lowercase: bool = False) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        if lowercase:
            text = text.lower()
        chunks = text.splitlines(keepends=True) or [text]
        tok.train_from_iterator(chunks, trainer=trainer)
        return cls(tok, lowercase)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        if self.lowercase:
            text = text.lower()
        return self.tok.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token: int) -> bytes:
        piece = self.tok.id_to_token(token)
        if piece is None or piece == EOS:
            return b""
        return bytes(self._bytes[c] for c in piece)

    def start_id(self) -> int:
        return self.eos_id if self.eos_id is not None else 0

    def to_json(self) -> str:
        data = json.loads(self.tok.to_str())
        data["lmassist"] = {"type": "bpe", "lowercase": self.lowercase}
        return json.dumps(data, ensure_ascii=False)


def train_tokenizer(kind: str, text: str, lowercase: bool = False, vocab_size: int = 1024) -> Tokenizer:
    """Learn a tokenizer from the training text."""
    if kind == "char":
        return CharTokenizer.train(text, lowercase)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size=vocab_size, lowercase=lowercase)
    raise ValueError(f"unknown tokenizer {kind!r}; expected one of {', '.join(KINDS)}")


def tokenizer_from_json(text: str) -> Tokenizer:
    """Rebuild a tokenizer saved by ``to_json``; raises ValueError when the JSON is not one."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a tokenizer")
    if data.get("type") == "char":
        chars = data["chars"]
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("character list is malformed")
        tok = CharTokenizer(chars, bool(data.get("lowercase", False)))
        if tok.chars != chars:
            raise ValueError("character list is not in canonical order")
        return tok
    meta = data.pop("lmassist", None)
    if not isinstance(meta, dict) or meta.get("type") != "bpe":
        raise ValueError("unknown tokenizer type")
    from tokenizers import Tokenizer as HFTokenizer

    try:
        tok = HFTokenizer.from_str(json.dumps(data))
    except Exception as e:  # noqa: BLE001 - the library raises plain Exceptions for bad JSON
        raise ValueError(str(e).splitlines()[0] if str(e) else "invalid BPE tokenizer") from None
    return BPETokenizer(tok, bool(meta.get("lowercase", False)))


class StreamDecoder:
    """Turns token ids into text pieces one token at a time, holding back incomplete UTF-8.

    A byte-level BPE token can end in the middle of a multi-byte character; that token's piece is
    then ``""`` and the character appears with the token that completes it.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def piece(self, token: int) -> str:
        return self._decoder.decode(self.tokenizer.token_bytes(token))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: byte-level BPE writes every byte as a printable character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}
