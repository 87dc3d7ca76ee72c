"""The shared generation interface: the one contract every backend and every task codes against.

A backend turns a loaded model into a :class:`Model`. It implements a handful of small primitives
(``stream_pieces``, ``score``, ``count_tokens``) and this module adds the behaviour every caller relies
on, in one place, so that it is the same whichever backend runs: stop strings, cancellation from
another thread, the token budget, and the final :class:`GenerationStats`.

This module imports nothing of lmassist's but its errors, and nothing heavy: tasks and faces import it freely.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lmassist.errors import (  # noqa: F401 - the contract's errors, importable from here too
    ContextLengthError,
    LMAssistError,
    ModelLoadError,
    UnsupportedError,
)

Role = Literal["system", "user", "assistant"]
StopReason = Literal["eos", "length", "stop", "cancelled", "error"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


# A base model (no chat template) sees a conversation as a plain transcript to continue; these end
# the assistant's turn in it, so a reply stops where the model starts writing the next speaker.
TRANSCRIPT_STOPS = ("\nUser:", "\nAssistant:", "\nSystem:")


def transcript_prompt(messages: Sequence[Message]) -> str:
    """A conversation as plain text for a model without a chat template, ending on the assistant's cue."""
    return "\n".join(f"{m.role.capitalize()}: {m.content.strip()}" for m in messages) + "\nAssistant:"


def as_messages(items: Iterable[Message | dict[str, str]]) -> list[Message]:
    """Accept either Message objects or OpenAI-style dicts, so callers can use either."""
    return [m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in items]


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


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    stop_reason: StopReason = "eos"

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: tokens after the first, over the time after the first arrived."""
        if self.time_to_first_token_s is None or self.generated_tokens < 2:
            return 0.0
        decode_s = self.total_s - self.time_to_first_token_s
        return (self.generated_tokens - 1) / decode_s if decode_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 2)
        return d


class CancelToken:
    """Set from any thread (a signal handler, the UI) to stop a generation at the next token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class ModelInfo:
    """What tasks and faces need to know about a loaded model to use it well."""

    name: str  # the full "backend:model" name
    backend: str
    context_length: int
    chat_template: bool  # False for base models: tasks then use completion prompts
    device: str = "cpu"
    details: dict[str, Any] = field(default_factory=dict)
    # What the model's authors recommend; callers start from these and apply the user's changes.
    default_options: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass
class StreamRequest:
    """What a backend's ``_stream`` receives, and where it reports the prompt size and why it ended."""

    options: GenerationOptions
    cancel: CancelToken
    messages: list[Message] | None = None
    prompt: str | None = None
    prompt_tokens: int = 0
    finish_reason: StopReason | None = None


class Generation:
    """A reply in progress: iterate it for text chunks; afterwards ``text`` and ``stats`` are final.

    It applies the stop strings (holding back text that could be the start of one), checks the
    cancel token between tokens, and times the reply. Every backend yields one chunk per token, so
    the token count here is exact.
    """

    def __init__(self, pieces: Iterator[str], request: StreamRequest) -> None:
        self._pieces = pieces
        self._request = request
        self.stats = GenerationStats()
        self.text = ""
        self.done = False

    @property
    def cancel_token(self) -> CancelToken:
        return self._request.cancel

    def cancel(self) -> None:
        self._request.cancel.cancel()

    @property
    def interrupted(self) -> bool:
        return self.stats.stop_reason == "cancelled"

    def __iter__(self) -> Iterator[str]:
        if self.done:
            return
        request, stops = self._request, self._request.options.stop
        start = time.perf_counter()
        pending = ""  # generated text not yet handed out, because it may begin a stop string
        reason: StopReason | None = None
        try:
            for piece in self._pieces:
                if self.stats.generated_tokens == 0:
                    self.stats.time_to_first_token_s = time.perf_counter() - start
                self.stats.generated_tokens += 1
                pending += piece
                if stops:
                    hit = _find_stop(pending, stops)
                    if hit is not None:
                        pending = pending[:hit]
                        reason = "stop"
                        break
                    safe = len(pending) - _longest_stop_prefix(pending, stops)
                else:
                    safe = len(pending)
                if safe > 0:
                    out, pending = pending[:safe], pending[safe:]
                    self.text += out
                    yield out
                if request.cancel.cancelled:
                    reason = "cancelled"
                    break
            else:
                reason = request.finish_reason
                if request.cancel.cancelled:
                    reason = "cancelled"
                if reason is None:
                    at_limit = self.stats.generated_tokens >= request.options.max_new_tokens
                    reason = "length" if at_limit else "eos"
            if pending:  # the text before a stop string, or a tail held back when cancelled
                self.text += pending
                yield pending
        except GeneratorExit:
            reason = "cancelled"
            raise
        finally:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
            self.stats.prompt_tokens = request.prompt_tokens
            self.stats.total_s = time.perf_counter() - start
            self.stats.stop_reason = reason or "cancelled"
            self.done = True

    def result(self) -> str:
        """Run the reply to the end (or to cancellation) and return its text."""
        for _ in self:
            pass
        return self.text


def _find_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def _longest_stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of some stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


class Model(ABC):
    """A loaded model. Backends subclass it; everyone else calls ``chat``, ``complete``, ``score``."""

    info: ModelInfo

    # -- what a backend implements -------------------------------------------------------------

    @abstractmethod
    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        """Yield one text piece per generated token for ``request.messages`` or ``request.prompt``.

        Set ``request.prompt_tokens`` before the first yield, ``request.finish_reason`` when the
        model itself decides to stop (``"eos"``) or the budget runs out (``"length"``), and return
        promptly once ``request.cancel.cancelled`` is true.
        """

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is for this model, so tasks can split inputs to fit."""

    def count_messages(self, messages: Sequence[Message]) -> int:
        """How many tokens a conversation's prompt is. This default estimates the template's markers
        (:data:`MESSAGE_OVERHEAD` a message); backends that render the prompt count it exactly."""
        return sum(self.count_tokens(m.content) + MESSAGE_OVERHEAD for m in messages)

    def prompt_budget(self, options: GenerationOptions) -> int:
        """The prompt tokens that leave room for the reply: the context less ``max_new_tokens``, but
        never less than three quarters of it (a huge ``max_new_tokens`` must not push out the question)."""
        ctx = self.context_length
        return ctx - min(options.max_new_tokens, ctx // 4)

    def check_prompt(self, tokens: int, options: GenerationOptions) -> None:
        """Refuse a plain-text prompt (``complete``) that leaves no room for the reply: unlike a
        conversation, it has no turns to drop."""
        budget = self.prompt_budget(options)
        if tokens > budget:
            raise ContextLengthError(
                f"the prompt is {tokens} tokens but the model's context ({self.context_length}) "
                f"leaves room for {budget} with {options.max_new_tokens} new tokens; shorten it"
            )

    def fit(self, messages: list[Message], options: GenerationOptions) -> list[Message]:
        """The conversation trimmed to :meth:`prompt_budget`, oldest turns first (see :func:`fit_messages`).

        The one place a conversation is trimmed: :meth:`chat` calls it before the backend sees the
        messages, and faces that show what the model sees call it too.
        """
        return fit_messages(messages, self.count_messages, self.prompt_budget(options))

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Total log-likelihood (natural log) of each continuation after ``prompt``.

        Used for classification by likelihood and perplexity. Backends that cannot see token
        probabilities leave this as it is and tasks fall back to generation.
        """
        raise UnsupportedError(f"{self.info.backend} models do not support scoring")

    @property
    def supports_score(self) -> bool:
        return type(self).score is not Model.score

    def close(self) -> None:
        """Free the model's memory now rather than when it is garbage collected."""

    # -- what everyone calls -------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self.info.context_length

    def chat(
        self,
        messages: Iterable[Message | dict[str, str]],
        options: GenerationOptions | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        """Reply to a conversation, formatted with the model's chat template (or as a transcript)."""
        msgs = as_messages(messages)
        if not msgs:
            raise LMAssistError("nothing to reply to: the conversation is empty")
        opts = options or self.info.default_options
        if not self.info.chat_template:
            opts = opts.replace(stop=opts.stop + tuple(s for s in TRANSCRIPT_STOPS if s not in opts.stop))
        request = StreamRequest(opts.validate(), cancel or CancelToken(), messages=msgs)
        return Generation(self._fitted_pieces(request), request)

    def _fitted_pieces(self, request: StreamRequest) -> Iterator[str]:
        # Trimmed when the reply is first read, in the thread that reads it, as the backends did.
        request.messages = self.fit(request.messages or [], request.options)
        yield from self.stream_pieces(request)

    def complete(
        self,
        prompt: str,
        options: GenerationOptions | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        """Continue ``prompt`` as plain text, with no chat formatting."""
        request = StreamRequest((options or self.info.default_options).validate(), cancel or CancelToken(), prompt=prompt)
        return Generation(self.stream_pieces(request), request)

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share: what a backend can reuse or must skip when scoring."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


MESSAGE_OVERHEAD = 4  # tokens a chat template adds around a message, for models that only estimate


def fit_messages(
    messages: list[Message], count: Callable[[list[Message]], int], budget: int
) -> list[Message]:
    """Drop the oldest turns (never the system prompt or the last message) until they fit.

    ``count`` maps a list of messages to its prompt length in tokens. Raises
    :class:`ContextLengthError` with the numbers when even the last message alone is too long.
    """
    msgs = list(messages)
    used = count(msgs)
    while used > budget:
        first = 1 if msgs and msgs[0].role == "system" else 0
        if len(msgs) - first <= 1:
            raise ContextLengthError(
                f"the prompt is {used} tokens but the model's context leaves room for {budget}; "
                "shorten it or use a model with a longer context"
            )
        del msgs[first]
        used = count(msgs)
    return msgs


ProgressCallback = Callable[[int, "int | None"], None]
"""Called as ``progress(done, total)`` while a long step (a download, a conversion) runs."""


@dataclass
class ModelSpec:
    """A model that a backend knows how to load, by name, whether or not it is on disk yet."""

    backend: str
    name: str
    source: str = ""  # a file, a folder or a hub id: whatever the backend's ``load`` understands
    description: str = ""
    installed: bool = True
    size_bytes: int | None = None
    context_length: int | None = None
    pull: Callable[[ProgressCallback | None], None] | None = None  # fetches it, when not installed
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.backend}:{self.name}"


class Backend(ABC):
    """A way of running models (llama.cpp, transformers, ...), registered by a plugin.

    Constructing a backend must be cheap: heavy libraries are imported in ``load`` (and in
    ``unavailable_reason``, by spec lookup only), so that ``lmassist --help`` never pays for them.
    """

    name: str = ""
    description: str = ""
    install_hint: str = ""  # how to make an unavailable backend available
    # A backend whose models() asks a server: the registry asks it only when the user names it.
    remote: bool = False

    def unavailable_reason(self) -> str | None:
        """Why the backend cannot run here (a missing library), or None when it can."""
        return None

    def models(self) -> Iterable[ModelSpec]:
        """The models this backend finds by itself: files in the models folder, caches, checkpoints."""
        return ()

    def spec_for(self, model: str) -> ModelSpec:
        """A spec for a name no plugin registered: a path or hub id given on the command line."""
        raise ModelLoadError(f"unknown model {self.name}:{model}")

    def device(self) -> str:
        """Where models of this backend run by default (``cpu``, ``cuda``, ...)."""
        return "cpu"

    @abstractmethod
    def load(self, spec: ModelSpec, **settings: Any) -> Model:
        """Load ``spec`` and return it ready to generate; raise :class:`ModelLoadError` if it can't."""
