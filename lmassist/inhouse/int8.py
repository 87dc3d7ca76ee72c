"""The int8 file format of in-house weights: symmetric, one fp32 scale per output row.

Each weight matrix ``W`` (out × in, as ``nn.Linear``, the recurrent layers and the embeddings store
it) becomes int8 values ``q`` and one scale per row, ``s = max|W_row| / 127``, so that ``W ≈ q · s``
with an error of at most half a step per weight. Biases and norms stay fp32. Writing the copy is
:mod:`lmassist.inhouse.optimize`'s work; reading it back is :mod:`lmassist.inhouse.checkpoint`'s.
"""

from __future__ import annotations

import torch

SCALE = "__int8_scale__."  # prefix of the per-row scale stored beside each int8 matrix


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``w`` (out × in) → int8 values and one fp32 scale per row."""
    w = w.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # the largest |w| of a row maps to ±127
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """int8 values and per-row scales back to an fp32 matrix."""
    return q.float() * scale[:, None]


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every float matrix as int8 plus its scales (``__int8_scale__.NAME``); vectors stay as they are."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.dim() == 2 and t.is_floating_point():
            out[name], out[SCALE + name] = quantize_int8(t)
        else:
            out[name] = t
    return out


def dequantize_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fp32 state dict an int8 file stands for; a damaged file is a ValueError naming the tensor."""
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name.startswith(SCALE):
            if name[len(SCALE):] not in tensors:
                raise ValueError(f"scale {name!r} has no int8 matrix")
            continue
        scale = tensors.get(SCALE + name)
        if t.dtype == torch.int8:
            if scale is None or scale.dim() != 1 or t.dim() != 2 or scale.numel() != t.size(0):
                raise ValueError(f"int8 matrix {name!r} has no matching per-row scale")
            out[name] = dequantize_int8(t, scale)
        elif scale is not None:
            raise ValueError(f"{name!r} has a scale but is not int8")
        else:
            out[name] = t
    return out
