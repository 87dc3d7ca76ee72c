"""The models: a decoder-only Transformer and an RNN/LSTM, plus one ``generate()`` for both.

Read it top to bottom like a textbook figure (it follows nanoGPT's model.py):

* :class:`TransformerLM` — token + position embeddings, ``n_layer`` pre-norm blocks of causal
  self-attention (``softmax(QKᵀ/√d_k)V`` via ``F.scaled_dot_product_attention``) and an MLP, a final
  LayerNorm and a linear head that shares its weights with the token embedding.
* :class:`RecurrentLM` — embedding → ``nn.LSTM`` or ``nn.RNN`` layers → linear head.

Both share one calling convention, so generation, scoring and evaluation need not care which is
which: ``logits, state = model(idx, state)``. For the Transformer the state is a :class:`KVCache`
(or ``None`` for a plain full-sequence forward pass); for the recurrent models it is the hidden state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

# -- configuration --------------------------------------------------------------------------------


@dataclass
class TransformerConfig:
    """A GPT-style decoder. ``context_length`` is the longest sequence it has position embeddings for."""

    vocab_size: int
    context_length: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    arch: str = "transformer"


@dataclass
class RecurrentConfig:
    """An RNN or LSTM language model (``arch`` is ``"lstm"`` or ``"rnn"``).

    ``context_length`` is the length of the training sequences (truncated back-propagation); at
    generation time the hidden state carries the context forward without a hard limit.
    """

    vocab_size: int
    arch: str = "lstm"
    context_length: int = 128
    n_layer: int = 2
    n_embd: int = 128
    n_hidden: int = 256
    dropout: float = 0.0


ModelConfig = TransformerConfig | RecurrentConfig
ARCHS = ("transformer", "lstm", "rnn")


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from ``config.json``; unknown keys are an error, not silently dropped."""
    arch = d.get("arch")
    cls = TransformerConfig if arch == "transformer" else RecurrentConfig
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    known = {f.name for f in fields(cls)}
    extra = set(d) - known
    if extra:
        raise ValueError(f"unexpected model settings: {', '.join(sorted(extra))}")
    return cls(**d)


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    return asdict(config)


def build_model(config: ModelConfig) -> nn.Module:
    """The model a config describes, freshly initialised."""
    if config.arch == "transformer":
        return TransformerLM(config)  # type: ignore[arg-type]
    return RecurrentLM(config)  # type: ignore[arg-type]


# -- the Transformer ------------------------------------------------------------------------------


class KVCache:
    """Keys and values of every layer for the tokens seen so far, so each new token costs O(T), not O(T²).

    Memory is allocated once for ``max_len`` positions; ``length`` says how many are filled.
    """

    def __init__(self, config: TransformerConfig, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        head = config.n_embd // config.n_head
        shape = (batch, config.n_head, config.context_length, head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0
        self.max_len = config.context_length

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values for ``layer`` and return all of them so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)
        if past == 0:
            mask, causal = None, True  # the usual lower-triangular mask
        elif T == 1:
            mask, causal = None, False  # one new token may look at everything before it
        else:  # several new tokens after a cached prefix: token i sees the prefix and new tokens ≤ i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            causal = False
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class TransformerLM(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.context_length, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix reads and writes tokens
        self.apply(_init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def init_state(self, batch: int = 1) -> KVCache:
        p = self.wte.weight
        return KVCache(self.config, batch, p.device, p.dtype)

    def forward(self, idx: torch.Tensor, state: KVCache | None = None) -> tuple[torch.Tensor, KVCache | None]:
        """Logits for every position of ``idx`` (B, T); with a cache, ``idx`` continues what it holds."""
        B, T = idx.shape
        start = state.length if state is not None else 0
        if start + T > self.config.context_length:
            raise ValueError(f"sequence of {start + T} tokens exceeds the context of {self.config.context_length}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, state, i)
        if state is not None:
            state.length += T
        return self.lm_head(self.ln_f(x)), state


# -- the RNN / LSTM -------------------------------------------------------------------------------


class RecurrentLM(nn.Module):
    """Embedding → stacked LSTM/RNN → linear head: the classic character-level language model."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        rnn_cls = nn.LSTM if config.arch == "lstm" else nn.RNN
        self.rnn = rnn_cls(
            config.n_embd,
            config.n_hidden,
            num_layers=config.n_layer,
            batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.head = nn.Linear(config.n_hidden, config.vocab_size)
        nn.init.normal_(self.embed.weight, std=0.1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def init_state(self, batch: int = 1) -> None:
        return None  # nn.LSTM/nn.RNN start from zeros when given no state

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self.drop(self.embed(idx))
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def context_limit(model: nn.Module) -> int | None:
    """The longest input the model can see at once: a number for the Transformer, None for RNNs."""
    config = getattr(model, "config", None)
    return config.context_length if isinstance(config, TransformerConfig) else None


# -- loss -----------------------------------------------------------------------------------------


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of next-token predictions, in nats per token."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction=reduction)


# -- generation -----------------------------------------------------------------------------------


def sample_next(
    logits: torch.Tensor,
    history: Sequence[int] = (),
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    generator: torch.Generator | None = None,
) -> int:
    """Pick the next token from one row of logits. ``temperature <= 0`` is greedy (argmax)."""
    logits = logits.float().clone()
    # 1. repetition penalty (CTRL paper): make tokens already present less likely
    if repetition_penalty != 1.0 and len(history):
        seen = torch.tensor(sorted(set(history)), device=logits.device)
        scores = logits[seen]
        logits[seen] = torch.where(scores > 0, scores / repetition_penalty, scores * repetition_penalty)
    # 2. greedy: the most likely token, no randomness
    if temperature <= 0:
        return int(torch.argmax(logits))
    # 3. temperature: < 1 sharpens the distribution, > 1 flattens it
    logits = logits / temperature
    # 4. top-k: keep only the k most likely tokens
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    # 5. top-p (nucleus): keep the smallest set of tokens whose probabilities sum to top_p
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) > top_p  # always keeps the first
        logits[order[drop]] = float("-inf")
    # 6. sample from what is left
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    eos_id: int | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time after ``prompt`` (a non-empty list of ids).

    With ``use_cache`` the Transformer feeds only the newest token each step and reads the rest from
    its :class:`KVCache`; the RNN/LSTM always carries its hidden state. Without the cache the
    Transformer re-reads the whole (cropped) sequence every step — slower, same result.
    """
    if not prompt:
        raise ValueError("generate needs at least one prompt token")
    model.eval()
    device = next(model.parameters()).device
    limit = context_limit(model)
    tokens = list(prompt)
    recurrent = limit is None
    # Feed the prompt once. A Transformer only ever sees its last `limit` tokens.
    window = tokens if recurrent else tokens[-limit:]
    state = model.init_state(1) if (use_cache or recurrent) else None
    logits, state = model(torch.tensor([window], device=device), state)
    for _ in range(max_new_tokens):
        token = sample_next(logits[0, -1], tokens, temperature, top_k, top_p, repetition_penalty, generator)
        tokens.append(token)
        yield token
        if token == eos_id:
            return
        if recurrent:  # the hidden state remembers everything so far
            logits, state = model(torch.tensor([[token]], device=device), state)
        elif use_cache:
            if state.length >= limit:  # cache full: slide by half a window and re-read it once
                state = model.init_state(1)
                logits, state = model(torch.tensor([tokens[-(limit // 2):]], device=device), state)
            else:
                logits, state = model(torch.tensor([[token]], device=device), state)
        else:
            logits, _ = model(torch.tensor([tokens[-limit:]], device=device))
