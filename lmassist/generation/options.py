"""Sampling options, and ``-O KEY VALUE`` pairs checked before any model loads."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lmassist.errors import LMAssistError


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling settings. ``temperature == 0`` means greedy decoding on every backend."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    repetition_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def replace(self, **changes: Any) -> GenerationOptions:
        if "stop" in changes and changes["stop"] is not None:
            changes["stop"] = tuple(changes["stop"])
        return dataclasses.replace(self, **changes)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def validate(self) -> GenerationOptions:
        """Raise a user-facing error for values no backend can honour (NaN and infinity included)."""
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise LMAssistError(f"{name} must be a finite number, got {value!r}")
        for name in ("max_new_tokens", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise LMAssistError(f"{name} must be a whole number, got {value!r}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise LMAssistError(f"max_new_tokens must be in 1..{MAX_NEW_TOKENS}, got {self.max_new_tokens}")
        if not 0 <= self.temperature <= 100:
            raise LMAssistError(f"temperature must be in 0..100 (0 is greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise LMAssistError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise LMAssistError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < self.repetition_penalty <= 10:
            raise LMAssistError(f"repetition_penalty must be in (0, 10] (1 is none), got {self.repetition_penalty}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**32):
            raise LMAssistError(f"seed must be in 0..{2**32 - 1} (or none), got {self.seed!r}")
        for stop in self.stop:
            if not isinstance(stop, str) or not stop:
                raise LMAssistError(f"a stop string must be non-empty text, got {stop!r}")
        return self

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], base: GenerationOptions | None = None
    ) -> GenerationOptions:
        """Build options from ``-O KEY VALUE`` pairs given as strings on the command line."""
        return (base or cls()).replace(**parse_option_pairs(pairs)).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


MAX_NEW_TOKENS = 1_000_000
_OPTION_ALIASES = {"max_tokens": "max_new_tokens", "n": "max_new_tokens"}
_ESCAPE = re.compile(r"\\(?:([ntr0\\'\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def decode_escapes(text: str) -> str:
    """``\\n``, ``\\t``, ``\\xHH``, ``\\uHHHH`` and the like decoded; anything else kept as typed.

    Never raises (a lone ``\\x`` stays ``\\x``) and leaves non-ASCII text alone, unlike Python's
    ``unicode_escape`` codec, which fails on the first and garbles the second.
    """
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return _SIMPLE_ESCAPES[m.group(1)]
        return chr(int(m.group(2) or m.group(3), 16))

    return _ESCAPE.sub(one, text)


def option_name(key: str) -> str:
    """The option field a user's key names: dashes as underscores, ``max_tokens`` and ``n`` as
    ``max_new_tokens`` (the OpenAI and llama.cpp spellings). Unknown names come back as given."""
    name = key.replace("-", "_")
    return _OPTION_ALIASES.get(name, name)


def parse_option_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``-O KEY VALUE`` pairs as checked option values, before any model is loaded.

    Call it first so a bad option fails in milliseconds rather than after the load; the result
    (field -> value) goes to ``GenerationOptions.replace`` over the model's defaults. Every value is
    checked on its own (finite numbers, ranges, non-empty stop strings) with one-line errors.
    """
    fields = {f.name for f in dataclasses.fields(GenerationOptions)}
    changes: dict[str, Any] = {}
    stops: list[str] = []
    for key, value in pairs:
        name = option_name(key)
        if name not in fields:
            raise LMAssistError(f"unknown option {key!r}; valid options: {', '.join(sorted(fields))}")
        if name == "stop":
            stops.append(decode_escapes(value))
            continue
        text = value.strip()
        try:
            if name == "seed":
                changes[name] = None if text.lower() in ("", "none") else int(text)
            elif name in ("max_new_tokens", "top_k"):
                changes[name] = int(text)
            else:
                changes[name] = float(text)
        except ValueError:
            kind = "a whole number" if name in ("seed", "max_new_tokens", "top_k") else "a number"
            raise LMAssistError(f"option {key!r} needs {kind}, got {value!r}") from None
    if stops:
        changes["stop"] = tuple(stops)
    GenerationOptions().replace(**changes).validate()  # each value in range, whatever the base
    return changes

