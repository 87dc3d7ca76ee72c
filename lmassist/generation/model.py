"""The contract itself: a loaded :class:`Model`, and the :class:`Backend` that loads it."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmassist.errors import ContextLengthError, LMAssistError, ModelLoadError, UnsupportedError
from lmassist.generation.messages import TRANSCRIPT_STOPS, Message, as_messages
from lmassist.generation.options import GenerationOptions
from lmassist.generation.stream import CancelToken, Generation, StreamRequest


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


class Model(ABC):
    """A loaded model. Backends subclass it; everyone else calls ``chat``, ``complete``, ``score``."""

    info: ModelInfo
    # True when several threads may call chat/complete/score at once (a server that queues or
    # batches requests); a local model runs one request at a time and callers must not overlap them.
    parallel_safe: bool = False

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

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """:meth:`score` for many ``(prompt, continuations)`` pairs at once, in order.

        The batched entry point for tasks that label many texts: a backend that can run several
        sequences per forward pass (padded batches on a GPU, several sequences per llama.cpp decode)
        overrides it; the default scores one pair at a time, so every backend with :meth:`score` has it.
        """
        return [self.score(prompt, continuations) for prompt, continuations in requests]

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
    requires: tuple[str, ...] = ()  # the modules it imports: one that is missing makes it unavailable

    def unavailable_reason(self) -> str | None:
        """Why the backend cannot run here (a missing library), or None when it can."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not missing:
            return None
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"

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
