"""A loaded llama.cpp model behind the shared generation interface.

We drive ``Llama.generate`` token by token rather than ``create_chat_completion``: that gives one
piece per token, exact prompt token counts, cancellation between any two tokens, and llama.cpp's
prefix reuse, so a growing conversation only evaluates its new turn. ``score_many`` stays the
contract's one pair at a time (each after the cached few-shot prefix): several sequences per decode
measured no faster on 2 cores (``lmassist bench sentiment --throughput --multi-seq``). Imported only by
``LlamaCppBackend.load``: ``llama_cpp`` and ``numpy`` are imported at module level here on purpose.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Iterator, Sequence
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from lmassist.backends.llamacpp_prefixes import PrefixStates
from lmassist.generation import (
    ContextLengthError,
    GenerationOptions,
    Message,
    Model,
    ModelInfo,
    ModelSpec,
    StreamRequest,
    common_prefix_length,
    transcript_prompt,
)
from lmassist.system import ThreadGovernor

# llama.cpp's CPU kernels round differently for a batch of one token than for a batch of many, so a
# prompt whose last token alone was re-evaluated from the cache can flip a near-tie greedy choice.
# Re-evaluating at least this many tokens keeps greedy replies identical, cached or not.
MIN_REEVAL = 16
# Prompts are read in batches of this many tokens, so a cancel takes effect within one batch.
PROMPT_BATCH = 128


class LlamaCppModel(Model):
    def __init__(
        self, spec: ModelSpec, llm: Any, governor: ThreadGovernor, defaults: GenerationOptions, chat: bool = True,
        prefixes: PrefixStates | None = None, extra_buffers: bool = True,
    ) -> None:
        self._prefixes = prefixes
        self._governor = governor

        self._llama_cpp = llama_cpp
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        template = llm.metadata.get("tokenizer.chat_template") if chat else None
        self._formatter = None
        if template:
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )
        self.info = ModelInfo(
            name=spec.full_name,
            backend="llamacpp",
            context_length=llm.n_ctx(),
            chat_template=self._formatter is not None,
            device="gpu" if llama_cpp.llama_supports_gpu_offload() and llm.model_params.n_gpu_layers else "cpu",
            details={
                "path": spec.source,
                "threads": governor.fixed or "auto",
                "cores": governor.cores,
                "extra_buffers": extra_buffers,
                "trained_context": int(llm.metadata.get(f"{llm.metadata.get('general.architecture', '')}.context_length", 0) or 0),
                "architecture": llm.metadata.get("general.architecture", ""),
            },
            default_options=defaults,
        )

    @property
    def llama(self) -> Any:
        """The ``llama_cpp.Llama`` this model drives (for benchmarks and tests that compare with it)."""
        return self._llm

    # -- prompts ----------------------------------------------------------------------------

    def _render(self, messages: list[Message]) -> str:
        if self._formatter is None:
            return transcript_prompt(messages)
        return self._formatter(messages=[m.to_dict() for m in messages]).prompt

    def _tokenize(self, text: str, bos: bool) -> list[int]:
        # The chat template writes its own special tokens; plain text gets the model's BOS.
        return self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=not bos)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Exact: the conversation rendered with the model's chat template, then tokenized."""
        return len(self._prompt_for(messages))

    def _prompt_for(self, messages: Sequence[Message]) -> list[int]:
        return self._tokenize(self._render(list(messages)), bos=self._formatter is None)

    def _prompt_tokens(self, request: StreamRequest) -> list[int]:
        if request.messages is not None:  # already fitted by Model.chat
            return self._prompt_for(request.messages)
        tokens = self._tokenize(request.prompt or "", bos=True)
        self.check_prompt(len(tokens), request.options)
        return tokens

    # -- generation -------------------------------------------------------------------------

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        llm, opts = self._llm, request.options
        tokens = self._prompt_tokens(request)
        request.prompt_tokens = len(tokens)
        llm.set_seed(opts.seed if opts.seed is not None else random.randint(0, 2**31 - 1))
        self._governor.tick(force=True)  # the machine as it was while we sat idle
        self._limit_reuse(tokens)
        if not self._evaluate_prompt(tokens, request):
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        is_eog = self._llama_cpp.llama_vocab_is_eog
        room = self.context_length - len(tokens)
        generated = 0
        for token in llm.generate(
            tokens,
            top_k=opts.top_k,
            top_p=opts.top_p,
            min_p=0.0,
            temp=0.0 if opts.greedy else opts.temperature,
            repeat_penalty=opts.repetition_penalty,
        ):
            if is_eog(self._vocab, token):
                request.finish_reason = "eos"
                break
            generated += 1
            yield decoder.decode(llm.detokenize([token]))
            if request.cancel.cancelled:
                break
            self._governor.tick()
            if generated >= opts.max_new_tokens or generated >= room:
                request.finish_reason = "length"
                break
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def _evaluate_prompt(self, tokens: list[int], request: StreamRequest) -> bool:
        """Read the prompt up to its last MIN_REEVAL tokens in batches, checking for cancellation.

        ``Llama.generate`` would read it in one call that nothing interrupts, so Ctrl+C would wait
        for the whole prompt. Returns False when cancelled.
        """
        llm = self._llm
        done = common_prefix_length(list(llm._input_ids), tokens)
        stop = len(tokens) - MIN_REEVAL
        if done >= stop:
            return True
        llm._ctx.kv_cache_seq_rm(-1, done, -1)
        llm.n_tokens = done
        for i in range(done, stop, PROMPT_BATCH):
            if request.cancel.cancelled:
                return False
            self._governor.tick()
            llm.eval(tokens[i : min(stop, i + PROMPT_BATCH)])
        return not request.cancel.cancelled

    def _limit_reuse(self, tokens: list[int]) -> None:
        """Trim the evaluated prefix so llama.cpp re-reads at least MIN_REEVAL prompt tokens."""
        llm = self._llm
        ceiling = max(0, len(tokens) - MIN_REEVAL)
        if llm.n_tokens > ceiling and common_prefix_length(list(llm._input_ids), tokens) > ceiling:
            llm._ctx.kv_cache_seq_rm(-1, ceiling, -1)
            llm.n_tokens = ceiling
            llm._requires_eval = True

    # -- scoring ----------------------------------------------------------------------------

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        # Special tokens are parsed, so a prompt rendered with the chat template scores as it generates.
        def tokenize(text: str) -> list[int]:
            return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

        prompt_ids = tokenize(prompt)
        seqs = [tokenize(prompt + continuation) for continuation in continuations]
        results: list[float] = []
        next_token: Any = None  # log-probabilities after the whole prompt, shared by one-token continuations
        for ids in seqs:
            start = common_prefix_length(prompt_ids, ids)
            if start == len(ids):  # an empty continuation has probability one
                results.append(0.0)
                continue
            if len(ids) > self.context_length:
                raise ContextLengthError(
                    f"prompt and continuation are {len(ids)} tokens; the context holds {self.context_length}"
                )
            if start == len(prompt_ids) == len(ids) - 1:
                # One token past the prompt (label words, mostly): one row of logits serves them all.
                if next_token is None:
                    next_token = _log_softmax(self._logits(prompt_ids, first=len(prompt_ids) - 1))[0]
                results.append(float(next_token[ids[-1]]))
                continue
            start = max(start, 1)
            logits = _log_softmax(self._logits(ids[:-1], first=start - 1))
            targets = np.asarray(ids[start:])
            results.append(float(logits[np.arange(len(targets)), targets].sum()))
        return results

    def _logits(self, ids: list[int], first: int) -> Any:
        """Logits at positions ``first..len(ids)-1``, reusing whatever prefix is already evaluated.

        ``Llama.eval`` keeps only the last row of logits unless the model was built with
        ``logits_all`` (a full n_ctx × vocab matrix); we ask llama.cpp for the rows we need instead.
        """
        llm = self._llm
        keep = min(common_prefix_length(list(llm._input_ids), ids), first)
        # A long uncached span may be on disk from an earlier run (see llamacpp_prefixes); if not,
        # the state is saved when evaluation passes that block boundary.
        boundary = first - first % self._prefixes.block if self._prefixes is not None else 0
        save = False
        if self._prefixes is not None and boundary > keep:
            keep = self._prefixes.restore(llm._ctx, ids[:boundary], keep)
            if keep == boundary:
                llm.input_ids[:boundary] = ids[:boundary]
            save = keep < boundary
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.n_tokens = keep
        rows = []
        n_vocab = llm.n_vocab()
        # Uncached prompt tokens before ``first`` are evaluated without asking for their logits. When
        # only the last row is wanted, one pass suffices: llama.cpp returns a batch's last row anyway.
        last_only = first == len(ids) - 1
        plain_stop = len(ids) if last_only else first
        segments = [(keep, boundary, False), (boundary, plain_stop, False)] if save else [(keep, plain_stop, False)]
        if not last_only:
            segments.append((first, len(ids), True))
        for start, stop, want in segments:
            if save and start == boundary:
                self._prefixes.save(llm._ctx, ids[:boundary])  # type: ignore[union-attr]
                save = False
            for i in range(start, stop, llm.n_batch):
                self._governor.tick()
                batch = ids[i : min(stop, i + llm.n_batch)]
                llm._batch.set_batch(batch=batch, n_past=llm.n_tokens, logits_all=want)
                llm._ctx.decode(llm._batch)
                llm.input_ids[llm.n_tokens : llm.n_tokens + len(batch)] = batch
                if want:
                    out = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(batch) * n_vocab,))
                    rows.append(out.reshape(len(batch), n_vocab).copy())
                llm.n_tokens += len(batch)
        if last_only:
            rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).reshape(1, n_vocab).copy())
        llm._requires_eval = True  # the sampler must not trust these logits as a live decode
        return np.concatenate(rows)

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()



def _log_softmax(logits: Any) -> Any:
    """Row-wise log-probabilities from a (rows, vocab) array of logits, computed stably."""
    m = logits.max(axis=1, keepdims=True)
    return logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))

