"""A loaded transformers model behind the shared generation interface.

Generation is a decode loop of our own, run in the caller's thread: one forward pass over the
prompt, then one per token with the model's KV cache, the token chosen by transformers' own logits
processors. ``model.generate`` in a helper thread, its ids streamed through a queue, was slower than
a raw ``generate``: libgomp sees more threads than cores once a second thread drives torch and
stops spinning between parallel regions (every operator then pays a futex wake-up), and a second
Python thread woke up for every token. In the caller's thread, torch's intra-op threads behave
exactly as they do for a raw ``generate`` call, cancellation is checked between any two tokens, and
closing the stream stops the work at once (``lmassist bench hf`` compares the two).

torch's thread count follows the machine's load (``hf.threads = auto``, the default): torch's
OpenMP threads spin while they wait for each other, so beside a busy process more threads can be
far slower than one (``lmassist bench hf --background 1``). Imported only by ``HFBackend.load``:
torch and transformers are imported at module level here on purpose.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from lmassist.backends.hf_batch import BatchScorer, Row, plan_rows
from lmassist.generation import (
    ContextLengthError,
    GenerationOptions,
    LMAssistError,
    Message,
    Model,
    ModelInfo,
    ModelSpec,
    StreamRequest,
    transcript_prompt,
)
from lmassist.system import CpuSample, ThreadGovernor


class _TokenPicker:
    """Chooses each next token the way ``generate`` does for the same options.

    The processors are transformers' own, in ``generate``'s order (repetition penalty, then
    temperature, top-k, top-p); a seed gets a private generator, so two replies in progress, or
    other torch users in the process, do not disturb each other's random numbers.
    """

    def __init__(self, options: GenerationOptions, device: torch.device) -> None:
        self.greedy = options.greedy
        processors: list[Any] = []
        if options.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(options.repetition_penalty))
        self.needs_ids = bool(processors)
        if not self.greedy:
            if options.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(options.temperature))
            if options.top_k:
                processors.append(TopKLogitsWarper(options.top_k, min_tokens_to_keep=1))
            if options.top_p < 1.0:
                processors.append(TopPLogitsWarper(options.top_p, min_tokens_to_keep=1))
        self.processors = LogitsProcessorList(processors)
        self.generator: torch.Generator | None = None
        if options.seed is not None and not self.greedy:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(options.seed)

    def __call__(self, ids: list[int], logits: torch.Tensor) -> int:
        """The next token after ``ids``, given the model's logits for the last position ([1, vocab])."""
        scores = logits.float()
        if self.processors:
            ids_tensor = torch.tensor([ids], device=logits.device) if self.needs_ids else None
            scores = self.processors(ids_tensor, scores)
        if self.greedy:
            return int(scores[0].argmax())
        probs = scores.softmax(dim=-1)
        return int(torch.multinomial(probs[0], 1, generator=self.generator))


class _Detokenizer:
    """Turns ids into text one token at a time, holding back partial UTF-8 characters.

    Decoding a token alone loses the spaces and bytes that depend on its neighbours, so we decode a
    short window and hand out what it adds (the prefix/read-offset method of TGI and vLLM).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0
        self.read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Text still held back at the end (a character the model never finished), if any."""
        if self.read >= len(self.ids):
            return ""
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :]).rstrip("\ufffd")
        return after[len(before):] if len(after) > len(before) else ""


def _token_ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


class HFModel(Model):
    """A causal LM and its tokenizer, on one device."""

    def __init__(
        self, spec: ModelSpec, model: Any, tokenizer: Any, device: str, details: dict[str, Any],
        threads: int | None = None, cores: int = 1, since: CpuSample | None = None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = torch.device(device)
        self._lock = threading.Lock()  # one forward pass at a time on this model
        # On a GPU the CPU threads only launch kernels: we leave torch's count alone unless it was set.
        self._govern = self._device.type == "cpu" or threads is not None
        self._governor = ThreadGovernor(_set_torch_threads, cores, threads, since=since)
        if self._govern:
            self._use_threads(force=True)  # the load was the first look at the machine
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed ``past_key_values`` to ``cache``; models with their own code may not have.
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in params
        config = model.config
        context = 0
        for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                context = value
                break
        self._has_template = bool(getattr(tokenizer, "chat_template", None))
        gen_config = getattr(model, "generation_config", None)
        self._eos = _token_ids(getattr(gen_config, "eos_token_id", None)) | _token_ids(tokenizer.eos_token_id)
        if not self._eos:
            self._eos = _token_ids(getattr(config, "eos_token_id", None))
        pad = tokenizer.pad_token_id
        self._pad = pad if pad is not None else (min(self._eos) if self._eos else 0)
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else getattr(config, "bos_token_id", None)
        self._bos = bos if bos is not None else (min(self._eos) if self._eos else None)
        self.info = ModelInfo(
            name=spec.full_name,
            backend="hf",
            context_length=context or 2048,
            chat_template=self._has_template,
            device=str(self._device),
            details={
                "architecture": (getattr(config, "architectures", None) or [type(model).__name__])[0],
                "dtype": str(model.dtype).replace("torch.", ""),
                "parameters": sum(p.numel() for p in model.parameters()),
                "threads": self._governor.fixed or "auto",
                "cores": cores,
                **details,
            },
        )

    # -- prompts ----------------------------------------------------------------------------

    def _render(self, messages: list[Message]) -> str:
        if not self._has_template:
            return transcript_prompt(messages)
        return self._tokenizer.apply_chat_template(
            [m.to_dict() for m in messages], add_generation_prompt=True, tokenize=False
        )

    def _encode(self, text: str, special: bool) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=special)["input_ids"])

    def encode_messages(self, messages: list[Message]) -> list[int]:
        """The prompt ids for ``messages``, as generation would read them (no trimming).

        The chat template writes its own special tokens; a transcript is plain text.
        """
        return self._encode(self._render(messages), special=not self._has_template)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text, special=False))

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Exact: the conversation through the tokenizer's chat template (or as a transcript)."""
        return len(self.encode_messages(list(messages)))

    def _prompt_ids(self, request: StreamRequest) -> list[int]:
        if request.messages is not None:  # already fitted by Model.chat
            ids = self.encode_messages(request.messages)
        else:
            ids = self._encode(request.prompt or "", special=True)
            self.check_prompt(len(ids), request.options)
        if not ids:  # an empty completion prompt: start from the beginning-of-text token
            if self._bos is None:
                raise LMAssistError("the prompt is empty and the model has no beginning-of-text token")
            ids = [self._bos]
        return ids

    # -- generation -------------------------------------------------------------------------

    def generation_config(self, options: GenerationOptions, max_new_tokens: int) -> GenerationConfig:
        """Our options as a fresh GenerationConfig: nothing inherited from the checkpoint's defaults."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "eos_token_id": sorted(self._eos) or None,
            "pad_token_id": self._pad,
            "bos_token_id": self._bos,
            "use_cache": True,
            "do_sample": not options.greedy,
        }
        if not options.greedy:
            kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k or None)
        if options.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repetition_penalty
        return GenerationConfig(**kwargs)

    def input_tensors(self, ids: list[int]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([ids], dtype=torch.long, device=self._device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    @property
    def hf_model(self) -> Any:
        """The transformers model (``None`` once closed)."""
        return self._model

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """The ids that end a reply (the checkpoint's generation config and the tokenizer's)."""
        return frozenset(self._eos)

    @property
    def threads(self) -> int:
        """The torch threads this model computes with now (chosen from the load unless fixed)."""
        return self._governor.threads

    def _use_threads(self, force: bool = False) -> None:
        """Re-check the machine now and then, and make torch use our count in *this* thread.

        torch's count is per OpenMP master thread and process-wide at once: anything else in the
        process (a raw ``generate`` in ``bench hf``, another backend) may have changed it.
        """
        if not self._govern:
            return
        self._governor.tick(force=force)
        if torch.get_num_threads() != self._governor.threads:
            _set_torch_threads(self._governor.threads)

    def _step(self, ids: list[int], cache: Any, picker: _TokenPicker) -> tuple[int, Any]:
        """One forward pass (the prompt, or the last token against the cache) and the token it picks."""
        fresh = ids if cache is None else ids[-1:]
        kwargs: dict[str, Any] = {"input_ids": torch.tensor([fresh], dtype=torch.long, device=self._device),
                                  "use_cache": True}
        if cache is not None:
            kwargs[self._cache_arg] = cache
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1  # the prompt's other positions need no logits
        with self._lock, torch.inference_mode():
            out = self._model(**kwargs)
            new_cache = out.get("cache")
            if new_cache is None:
                new_cache = out.get("past_key_values")
            token = picker(ids, out.logits[:, -1])
        # A model that keeps no cache reads the whole sequence again each step: slow, still right.
        return token, new_cache

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        opts = request.options
        ids = self._prompt_ids(request)
        request.prompt_tokens = len(ids)
        budget = min(opts.max_new_tokens, self.context_length - len(ids))
        if budget < 1:
            raise ContextLengthError(f"the prompt is {len(ids)} tokens and fills the model's context ({self.context_length})")
        picker = _TokenPicker(opts, self._device)
        detok = _Detokenizer(self._tokenizer)
        self._use_threads(force=True)  # what the machine did while we sat idle
        cache: Any = None
        generated = 0
        while not request.cancel.cancelled:
            try:
                token, cache = self._step(ids, cache, picker)
            except Exception as e:  # noqa: BLE001 - out of memory, device errors: one line for the user
                raise _user_error(e) from e
            if token in self._eos:
                request.finish_reason = "eos"
                break
            ids.append(token)
            generated += 1
            yield detok.add(token)
            if generated >= budget:
                request.finish_reason = "length"
                break
            self._use_threads()
        tail = detok.flush()
        if tail:
            yield tail

    # -- scoring ----------------------------------------------------------------------------

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """One forward pass per continuation (one per prompt for one-token ones), no padding: the
        reference that :meth:`score_many`'s batches are tested against."""
        rows, results = self._plan([(prompt, continuations)])
        scorer = self._batch_scorer()
        for row in rows:
            self._use_threads()
            scorer.run([row], results)
        return results[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """Padded batches sized to the device's memory, the pairs' shared prefix evaluated once
        (see :mod:`lmassist.backends.hf_batch`)."""
        rows, results = self._plan(requests)
        self._use_threads(force=True)
        try:
            self._batch_scorer().run(rows, results)
        except torch.OutOfMemoryError as e:
            raise _user_error(e) from e
        return results

    def _plan(self, requests: Sequence[tuple[str, Sequence[str]]]) -> tuple[list[Row], list[list[float]]]:
        return plan_rows(requests, lambda text: self._encode(text, special=True), self._bos, self.context_length)

    def _batch_scorer(self) -> BatchScorer:
        return BatchScorer(self._model, self._device, self._pad, self._cache_arg, self._logits_to_keep, self._lock)

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            del model
            if self._device.type == "cuda":
                torch.cuda.empty_cache()


def _set_torch_threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


def _user_error(e: BaseException) -> BaseException:
    """Out-of-memory and device errors from the generate thread, as one-line user errors."""
    if isinstance(e, LMAssistError):
        return e
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return LMAssistError(f"the device ran out of memory while generating ({text}); try --device cpu or a shorter prompt")
    return LMAssistError(f"transformers failed while generating: {type(e).__name__}: {text}")
