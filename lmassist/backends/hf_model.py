"""A loaded transformers model behind the shared generation interface.

Generation runs ``model.generate`` in a thread with a streamer that hands over token ids (not text)
through a queue: the consumer turns each id into exactly one text piece, so token counts are exact,
and the same ``generate`` call as a raw one keeps us at the library's own speed. A stopping
criterion reads the cancel token (and a stop flag set when the consumer goes away), so generation
ends within a token of either. Imported only by ``HFBackend.load``: torch and transformers are
imported at module level here on purpose.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from lmassist.generation import (
    ContextLengthError,
    GenerationOptions,
    LMAssistError,
    Message,
    Model,
    ModelInfo,
    ModelSpec,
    StreamRequest,
    common_prefix_length,
    fit_messages,
    transcript_prompt,
)

_END = object()


class _TokenStreamer(BaseStreamer):
    """Receives the ids ``generate`` produces and queues them one by one for the consumer."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first hands over the prompt itself
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(token)

    def end(self) -> None:
        self.queue.put(_END)


class _StopWhen(StoppingCriteria):
    """Stops ``generate`` after the current step once the user cancels or the consumer is gone."""

    def __init__(self, *flags: Any) -> None:
        self.flags = flags

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = any(f.cancelled if hasattr(f, "cancelled") else f.is_set() for f in self.flags)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


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

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, device: str, details: dict[str, Any]) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = torch.device(device)
        self._lock = threading.Lock()  # one generate at a time on this model
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

    def _encode_chat(self, messages: list[Message]) -> list[int]:
        # The chat template writes its own special tokens; a transcript is plain text.
        return self._encode(self._render(messages), special=not self._has_template)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text, special=False))

    def _prompt_ids(self, request: StreamRequest) -> list[int]:
        ctx = self.context_length
        budget = ctx - min(request.options.max_new_tokens, ctx // 4)
        if request.messages is not None:
            msgs = fit_messages(request.messages, lambda ms: len(self._encode_chat(ms)), budget)
            ids = self._encode_chat(msgs)
        else:
            ids = self._encode(request.prompt or "", special=True)
            if len(ids) > budget:
                raise ContextLengthError(
                    f"the prompt is {len(ids)} tokens but the model's context ({ctx}) leaves room for "
                    f"{budget} with {request.options.max_new_tokens} new tokens; shorten it"
                )
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

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        opts = request.options
        ids = self._prompt_ids(request)
        request.prompt_tokens = len(ids)
        budget = min(opts.max_new_tokens, self.context_length - len(ids))
        if budget < 1:
            raise ContextLengthError(f"the prompt is {len(ids)} tokens and fills the model's context ({self.context_length})")
        streamer = _TokenStreamer()
        stop = threading.Event()
        errors: list[BaseException] = []
        config = self.generation_config(opts, budget)
        inputs = self.input_tensors(ids)

        def run() -> None:
            try:
                with self._lock, torch.inference_mode():
                    if opts.seed is not None and not opts.greedy:
                        torch.manual_seed(opts.seed)  # generate samples from torch's global generator
                    self._model.generate(
                        **inputs,
                        generation_config=config,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhen(request.cancel, stop)]),
                    )
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
                errors.append(e)
            finally:
                streamer.end()

        thread = threading.Thread(target=run, name="lmassist-hf-generate", daemon=True)
        detok = _Detokenizer(self._tokenizer)
        generated = 0
        thread.start()
        try:
            while True:
                token = streamer.queue.get()
                if token is _END:
                    break
                if token in self._eos:
                    request.finish_reason = "eos"
                    break
                generated += 1
                yield detok.add(token)
                if request.cancel.cancelled:
                    break
                if generated >= budget:
                    request.finish_reason = "length"
                    break
            if errors:
                raise _user_error(errors[0]) from errors[0]
            tail = detok.flush()
            if tail:
                yield tail
        finally:
            stop.set()
            thread.join()

    # -- scoring ----------------------------------------------------------------------------

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        prompt_ids = self._encode(prompt, special=True)
        results = []
        for continuation in continuations:
            ids = self._encode(prompt + continuation, special=True)
            start = common_prefix_length(prompt_ids, ids)
            if start == len(ids):  # an empty continuation has probability one
                results.append(0.0)
                continue
            if start == 0:  # nothing to condition the first token on: give it the BOS token
                if self._bos is None:
                    start = 1
                else:
                    ids, start = [self._bos, *ids], 1
            if len(ids) > self.context_length:
                raise ContextLengthError(
                    f"prompt and continuation are {len(ids)} tokens; the context holds {self.context_length}"
                )
            with self._lock, torch.inference_mode():
                logits = self._model(torch.tensor([ids], device=self._device)).logits[0]
            logprobs = logits[start - 1 : len(ids) - 1].float().log_softmax(-1)
            targets = torch.tensor(ids[start:], device=logprobs.device)
            results.append(float(logprobs.gather(1, targets[:, None]).sum()))
        return results

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            del model
            if self._device.type == "cuda":
                torch.cuda.empty_cache()



def _user_error(e: BaseException) -> BaseException:
    """Out-of-memory and device errors from the generate thread, as one-line user errors."""
    if isinstance(e, LMAssistError):
        return e
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return LMAssistError(f"the device ran out of memory while generating ({text}); try --device cpu or a shorter prompt")
    return LMAssistError(f"transformers failed while generating: {type(e).__name__}: {text}")
