"""The shared generation interface: the one contract every backend and every task codes against.

A backend turns a loaded model into a :class:`Model`. It implements a handful of small primitives
(``stream_pieces``, ``score``, ``count_tokens``, and ``count_messages`` where it can count a
conversation exactly) and the contract adds the behaviour every caller relies on, in one place, so
that it is the same whichever backend runs: trimming a conversation to the context
(:meth:`Model.fit`), stop strings, cancellation from another thread, the token budget, and the
final :class:`GenerationStats`.

Import everything from here. By concern: :mod:`~lmassist.generation.messages` (messages and
transcripts), :mod:`~lmassist.generation.options` (sampling options and ``-O`` pairs),
:mod:`~lmassist.generation.stream` (a reply in progress) and :mod:`~lmassist.generation.model`
(``Model``, ``Backend``, ``ModelSpec``, trimming). The package imports nothing of lmassist's but
its errors, and nothing heavy: tasks and faces import it freely.
"""

from __future__ import annotations

from lmassist.errors import ContextLengthError, LMAssistError, ModelLoadError, UnsupportedError
from lmassist.generation.messages import TRANSCRIPT_STOPS, Message, Role, as_messages, transcript_prompt
from lmassist.generation.model import (
    MESSAGE_OVERHEAD,
    Backend,
    Model,
    ModelInfo,
    ModelSpec,
    ProgressCallback,
    common_prefix_length,
    fit_messages,
)
from lmassist.generation.options import (
    MAX_NEW_TOKENS,
    GenerationOptions,
    decode_escapes,
    option_name,
    parse_option_pairs,
)
from lmassist.generation.stream import CancelToken, Generation, GenerationStats, StopReason, StreamRequest

__all__ = [
    "MAX_NEW_TOKENS", "MESSAGE_OVERHEAD", "TRANSCRIPT_STOPS", "Backend", "CancelToken", "ContextLengthError",
    "Generation", "GenerationOptions", "GenerationStats", "LMAssistError", "Message", "Model", "ModelInfo",
    "ModelLoadError", "ModelSpec", "ProgressCallback", "Role", "StopReason", "StreamRequest", "UnsupportedError",
    "as_messages", "common_prefix_length", "decode_escapes", "fit_messages", "option_name",
    "parse_option_pairs", "transcript_prompt",
]
