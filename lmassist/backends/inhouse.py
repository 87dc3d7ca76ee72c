"""The built-in backend for in-house models: checkpoints trained with ``lmassist train``.

It adapts :mod:`lmassist.inhouse` (which knows nothing of lmassist's plugin world) to the shared
interface in :mod:`lmassist.generation`. These are base models without a chat template, so ``chat``
writes the conversation as a plain transcript ("User: ... / Assistant:") and stops when the model
starts the next "User:" turn.

Models come from ``<models folder>/inhouse/NAME/`` and from the package itself (the shipped
``shakespeare``). Nothing here imports torch until a model is loaded.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmassist import hookimpl
from lmassist.config import paths
from lmassist.errors import describe
from lmassist.generation import (
    Backend,
    Model,
    ModelInfo,
    ModelLoadError,
    ModelSpec,
    StreamRequest,
    transcript_prompt,
)
from lmassist.inhouse.pretrained import shipped_models
from lmassist.inhouse.tokenizers import StreamDecoder

if TYPE_CHECKING:
    from lmassist.generation import GenerationOptions, Message

RECURRENT_CONTEXT = 4096  # RNNs have no hard limit; this keeps tasks' chunks to a sensible size


class InhouseModel(Model):
    """A loaded checkpoint behind the shared interface."""

    def __init__(self, checkpoint: Any, name: str, device: Any, threads: int = 1) -> None:
        from lmassist.inhouse.model import context_limit, count_parameters

        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.device = device
        self.threads = threads
        self._limit = context_limit(self.model)
        self._lock = threading.Lock()  # one forward pass at a time: the model is not re-entrant
        config = checkpoint.config
        training = config.get("training", {})
        self.info = ModelInfo(
            name=f"inhouse:{name}",
            backend="inhouse",
            context_length=self._limit or RECURRENT_CONTEXT,
            chat_template=False,
            device=str(device),
            details={
                "arch": config["model"].get("arch"),
                "tokenizer": config.get("tokenizer"),
                "parameters": count_parameters(self.model),
                "quantization": config.get("quantization"),
                "pruned": config.get("pruned", 0.0),
                "val_loss": training.get("val_loss_full", training.get("best_val_loss")),
                "path": str(checkpoint.path),
            },
        )

    def fit(self, messages: list[Message], options: GenerationOptions) -> list[Message]:
        """The whole transcript, never trimmed by turns: an RNN remembers everything, and the
        Transformer's ``generate`` reads the last window of it by itself."""
        return messages

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        import torch

        from lmassist.inhouse.model import generate

        opts = request.options
        text = transcript_prompt(request.messages) if request.messages is not None else (request.prompt or "")
        if request.messages is not None:
            text = text.lstrip()
        ids = self._ids(text) or [self.tokenizer.start_id()]
        request.prompt_tokens = len(ids)
        generator = None
        if opts.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(opts.seed)
        decoder = StreamDecoder(self.tokenizer)
        with self._lock:
            tokens = generate(
                self.model,
                ids,
                opts.max_new_tokens,
                temperature=opts.temperature,
                top_k=opts.top_k,
                top_p=opts.top_p,
                repetition_penalty=opts.repetition_penalty,
                generator=generator,
                eos_id=self.tokenizer.eos_id,
            )
            try:
                for token in _with_threads(tokens, self.threads):
                    if request.cancel.cancelled:
                        return
                    if token == self.tokenizer.eos_id:
                        request.finish_reason = "eos"
                        return
                    yield decoder.piece(token)
                request.finish_reason = "length"
            finally:
                tokens.close()

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Summed natural-log probability of each continuation's tokens after ``prompt``."""
        import torch

        prefix = self._ids(prompt) or [self.tokenizer.start_id()]
        before = torch.get_num_threads()
        with self._lock, torch.no_grad():
            torch.set_num_threads(self.threads or before)
            try:
                return [self._score_one(prefix, cont) for cont in continuations]
            finally:
                torch.set_num_threads(before)

    def _score_one(self, prefix: list[int], cont: str) -> float:
        target = self._ids(cont)
        if not target:
            return 0.0
        return float(self._token_logprobs(prefix + target)[-len(target) :].sum())

    def _token_logprobs(self, seq: list[int]) -> Any:
        """log p(seq[i] | seq[:i]) for i ≥ 1; the Transformer reads long inputs in windows."""
        import torch

        data = torch.tensor(seq, device=self.device)
        if self._limit is None:
            logits, _ = self.model(data[:-1].unsqueeze(0))
            return torch.log_softmax(logits[0].float(), -1).gather(1, data[1:, None])[:, 0]
        out = []
        window = self._limit
        # keep as much left context as fits: the last window ends at the sequence's end
        start = max(0, len(seq) - 1 - window)
        positions = list(range(start, len(seq) - 1, window))
        for s in positions:
            x = data[s : s + window]
            y = data[s + 1 : s + 1 + window]
            logits, _ = self.model(x[: len(y)].unsqueeze(0))
            out.append(torch.log_softmax(logits[0].float(), -1).gather(1, y[:, None])[:, 0])
        return torch.cat(out)

    def close(self) -> None:
        self.model = None
        self.checkpoint = None


class InhouseBackend(Backend):
    name = "inhouse"
    description = "your own PyTorch language models (RNN, LSTM, Transformer), trained with 'lmassist train'"
    install_hint = "pip install 'lmassist[inhouse]'"
    requires = ("torch", "safetensors")

    def device(self) -> str:
        if importlib.util.find_spec("torch") is None:
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _folders(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        user = paths().models / "inhouse"
        if user.is_dir():
            for p in sorted(user.iterdir()):
                if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file():
                    found[p.name] = p
        for name, p in shipped_models().items():
            found.setdefault(name, p)
        return found

    def models(self) -> list[ModelSpec]:
        return [self._spec(name, path) for name, path in self._folders().items()]

    def _spec(self, name: str, path: Path) -> ModelSpec:
        details: dict[str, Any] = {}
        context = None
        description = "in-house model"
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            model = config.get("model", {})
            training = config.get("training", {})
            details = {"arch": model.get("arch"), "tokenizer": config.get("tokenizer"),
                       "quantization": config.get("quantization")}
            context = model.get("context_length") if model.get("arch") == "transformer" else RECURRENT_CONTEXT
            loss = training.get("val_loss_full", training.get("best_val_loss"))
            bits = [model.get("arch", "?"), config.get("tokenizer", "?")]
            if config.get("quantization"):
                bits.append(config["quantization"])
            if isinstance(loss, (int, float)):
                bits.append(f"val loss {loss:.2f}")
            description = "in-house " + ", ".join(str(b) for b in bits)
        except (OSError, ValueError, AttributeError):
            description = "in-house model (config.json unreadable)"
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file() and f.suffix in (".json", ".safetensors")
                   and f.name != "train_state.safetensors")
        return ModelSpec(backend=self.name, name=name, source=str(path), description=description,
                         installed=True, size_bytes=size, context_length=context, details=details)

    def spec_for(self, model: str) -> ModelSpec:
        path = Path(model).expanduser()
        if path.is_dir() and (path / "config.json").is_file():
            return self._spec(path.name, path)
        known = ", ".join(sorted(self._folders())) or "none yet"
        raise ModelLoadError(f"unknown model inhouse:{model}; in-house models: {known} (train one with 'lmassist train')")

    def load(self, spec: ModelSpec, **settings: Any) -> Model:
        import torch

        from lmassist.inhouse.checkpoint import load_checkpoint

        requested = settings.get("device")
        device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            ck = load_checkpoint(spec.source, device=device)
        except ModelLoadError:
            raise
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelLoadError(f"cannot load inhouse:{spec.name} from {spec.source}: {describe(e)}") from None
        threads = int(settings.get("threads") or 1)  # `lmassist settings set inhouse.threads N`
        return InhouseModel(ck, spec.name, device, threads)


def _with_threads(tokens: Iterator[int], threads: int) -> Iterator[int]:
    """Run each step of ``tokens`` with ``threads`` intra-op threads, restoring the setting between.

    Decoding one token of a small model is hundreds of tiny operations; spreading each over several
    threads costs more in synchronisation than it gains, and on a busy machine it collapses. The
    default is therefore one.
    """
    import torch

    while True:
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            token = next(tokens)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(before)
        yield token


@hookimpl
def register_backends(register: Any) -> None:
    register(InhouseBackend())
