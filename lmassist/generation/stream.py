"""A reply in progress: stop strings, cancellation from another thread, and its stats."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lmassist.generation.messages import Message
from lmassist.generation.options import GenerationOptions

StopReason = Literal["eos", "length", "stop", "cancelled", "error"]


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

